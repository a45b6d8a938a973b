pytest_plugins = ["mlrun_magic.testing.pytest_plugin"]
