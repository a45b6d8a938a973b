import signal

pytest_plugins = ["mlrun_magic.testing.pytest_plugin"]

# A shell without job control starts background commands with SIGINT ignored, and children
# inherit that: Ctrl-C tests would then see no KeyboardInterrupt at all. Python's own handler
# here is also reset to the default in every child at exec, so theirs work too.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
