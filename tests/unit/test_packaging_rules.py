"""Which files the archive leaves out, and the reason it gives for each."""

from __future__ import annotations

import os
import subprocess

import pytest

from mlrun_magic.packaging import list_files


def tree(root, paths: dict[str, str]):
    for rel, text in paths.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def included(root) -> set[str]:
    return {e.path for e in list_files(root).files}


def reasons(root) -> dict[str, str]:
    return dict(list_files(root).excluded)


BASE = {"MLproject": "name: x\n", "train.py": "print(1)\n"}


def test_default_excludes(tmp_path):
    tree(tmp_path, {**BASE,
                    ".git/HEAD": "ref", ".venv/lib/x.py": "", "venv/bin/python": "",
                    "envs/myenv/pyvenv.cfg": "home = /usr", "envs/myenv/lib/x.py": "",
                    "envs/conda1/conda-meta/history": "", "pkg/__pycache__/m.cpython-311.pyc": "",
                    "pkg/m.py": "", "pkg/old.pyc": "", "mlruns/0/meta.yaml": "",
                    "sub/mlruns": "a file", ".ipynb_checkpoints/nb-checkpoint.ipynb": "",
                    "nb/.ipynb_checkpoints/x.ipynb": "", ".mlrun_magic/history.jsonl": ""})
    assert included(tmp_path) == {"MLproject", "train.py", "pkg/m.py"}
    why = reasons(tmp_path)
    assert why == {
        ".git/": "default exclude '.git/'",
        ".ipynb_checkpoints/": "default exclude '.ipynb_checkpoints/'",
        ".mlrun_magic/": "default exclude '.mlrun_magic/'",
        ".venv/": "default exclude '.venv/'",
        "envs/conda1/": "default exclude: conda environment (holds conda-meta/)",
        "envs/myenv/": "default exclude: virtualenv (holds pyvenv.cfg)",
        "mlruns/": "MLflow store 'mlruns'",
        "nb/.ipynb_checkpoints/": "default exclude '.ipynb_checkpoints/'",
        "pkg/__pycache__/": "default exclude '__pycache__/'",
        "pkg/old.pyc": "default exclude '*.pyc'",
        "sub/mlruns": "MLflow store 'mlruns'",
        "venv/": "default exclude 'venv/'",
    }


@pytest.mark.parametrize("name", [".env", ".env.local", "conf/.env.prod", ".databrickscfg",
                                  ".netrc", "certs/server.pem", "tls.key", "id_rsa",
                                  ".pypirc", "credentials", ".aws/credentials",
                                  ".git-credentials"])
def test_secret_looking_files_are_excluded(tmp_path, name):
    tree(tmp_path, {**BASE, name: "secret"})
    assert included(tmp_path) == set(BASE)
    (path, reason), = list_files(tmp_path).excluded
    assert reason.startswith("secret '") and name.startswith(path.rstrip("/"))


def test_explicit_negation_reincludes_a_secret_but_a_catch_all_does_not(tmp_path):
    tree(tmp_path, {**BASE, ".env": "A=1", ".env.example": "A=", "server.pem": "x",
                    ".mlflowignore": "*.log\n!.env.example\n"})
    assert included(tmp_path) == set(BASE) | {".env.example", ".mlflowignore"}
    (tmp_path / ".mlflowignore").write_text("*.log\n!*\n")
    assert included(tmp_path) == set(BASE) | {".mlflowignore"}
    (tmp_path / ".mlflowignore").write_text("!.env\n!*.pem\n")
    assert included(tmp_path) == set(BASE) | {".mlflowignore", ".env", "server.pem"}


def test_defaults_cannot_be_reincluded(tmp_path):
    tree(tmp_path, {**BASE, ".git/HEAD": "ref", ".mlflowignore": "!.git/\n!.git/HEAD\n"})
    assert included(tmp_path) == set(BASE) | {".mlflowignore"}


def test_mlflowignore_takes_precedence_over_gitignore(tmp_path):
    tree(tmp_path, {**BASE, "data/a.csv": "1", "out.log": "x", "notes.txt": "y",
                    "sub/.gitignore": "*.txt\n", "sub/b.txt": "z",
                    ".gitignore": "*.log\n", ".mlflowignore": "# comment\n\ndata/\n"})
    assert included(tmp_path) == set(BASE) | {"out.log", "notes.txt", "sub/.gitignore",
                                              "sub/b.txt", ".gitignore", ".mlflowignore"}
    assert reasons(tmp_path) == {"data/": ".mlflowignore pattern 'data/' (line 3)"}
    assert list_files(tmp_path).rules_mode == ".mlflowignore"


def test_gitignore_root_and_nested(tmp_path):
    tree(tmp_path, {**BASE, ".gitignore": "*.log\n/build/\ndata/*\n!data/keep.csv\n",
                    "a.log": "", "build/x": "", "lib/build/y.py": "", "data/big.csv": "",
                    "data/keep.csv": "", "sub/.gitignore": "*.tmp\n!special.log\n",
                    "sub/x.tmp": "", "sub/special.log": "", "sub/other.log": "",
                    "other/x.tmp": ""})
    assert included(tmp_path) == set(BASE) | {".gitignore", "lib/build/y.py", "data/keep.csv",
                                              "sub/.gitignore", "sub/special.log",
                                              "other/x.tmp"}
    assert reasons(tmp_path) == {
        "a.log": ".gitignore pattern '*.log' (line 1)",
        "build/": ".gitignore pattern '/build/' (line 2)",
        "data/big.csv": ".gitignore pattern 'data/*' (line 3)",
        "sub/other.log": ".gitignore pattern '*.log' (line 1)",
        "sub/x.tmp": "sub/.gitignore pattern '*.tmp' (line 1)",
    }


def test_excluded_folder_cannot_have_files_reincluded(tmp_path):
    # As in git: "data/" excludes the folder, so "!data/keep.csv" cannot bring a file back.
    tree(tmp_path, {**BASE, ".mlflowignore": "data/\n!data/keep.csv\n", "data/keep.csv": ""})
    assert "data/keep.csv" not in included(tmp_path)


def test_matches_git_for_a_real_repository(tmp_path):
    tree(tmp_path, {**BASE, ".gitignore": "*.log\n/out/\ncache*\n!cache_keep.py\nsub/**/gen/\n",
                    "a.log": "", "out/r.txt": "", "src/out/kept.py": "", "cache1.bin": "",
                    "cache_keep.py": "", "sub/x/gen/file.py": "", "sub/x/real.py": "",
                    "sub/.gitignore": "/local.txt\n!*.log\n", "sub/local.txt": "",
                    "sub/deep/local.txt": "", "sub/debug.log": "", "docs/readme.md": ""})
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    git = subprocess.run(["git", "-C", str(tmp_path), "ls-files", "--others", "--cached",
                          "--exclude-standard"], check=True, capture_output=True, text=True)
    assert included(tmp_path) == set(git.stdout.split())


def test_git_info_exclude_is_honoured_in_gitignore_mode(tmp_path):
    tree(tmp_path, {**BASE, "scratch.ipynb": "{}"})
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    with open(tmp_path / ".git" / "info" / "exclude", "a") as f:
        f.write("scratch.ipynb\n")
    assert reasons(tmp_path)["scratch.ipynb"].startswith(
        ".git/info/exclude pattern 'scratch.ipynb' (line ")


def test_special_files_are_skipped(tmp_path):
    tree(tmp_path, BASE)
    os.mkfifo(tmp_path / "pipe")
    assert reasons(tmp_path) == {"pipe": "not a regular file (socket, pipe or device)"}


# -- secrets (issue 10, item 9) -------------------------------------------------------------

#: (file, the excluded path it shows as, the rule that must match): the names the audit found
#: packaged, then what credential scanners flag by file name.
SECRET_FILES = [
    (".envrc", ".envrc", ".envrc"), ("prod.env", "prod.env", "*.env"),
    (".npmrc", ".npmrc", ".npmrc"), (".kube/config", ".kube/config", "**/.kube/config"),
    (".pgpass", ".pgpass", ".pgpass"),
    (".streamlit/secrets.toml", ".streamlit/secrets.toml", "secrets.toml"),
    ("secrets.json", "secrets.json", "secrets.json"),
    ("gcp-key.json", "gcp-key.json", "*-key.json"),
    ("ID_RSA", "ID_RSA", "id_rsa*"), (".ENV", ".ENV", ".env"),
    (".env.production", ".env.production", ".env.*"), ("conf/.env", "conf/.env", ".env"),
    (".netrc", ".netrc", ".netrc"), ("_netrc", "_netrc", "_netrc"),
    (".pypirc", ".pypirc", ".pypirc"), (".git-credentials", ".git-credentials", ".git-credentials"),
    (".databrickscfg", ".databrickscfg", ".databrickscfg"),
    (".databricks/token-cache.json", ".databricks/token-cache.json",
     "**/.databricks/token-cache.json"),
    (".aws/credentials", ".aws/", ".aws/"), (".ssh/config", ".ssh/", ".ssh/"),
    (".azure/msal_token_cache.json", ".azure/", ".azure/"),
    (".gnupg/pubring.kbx", ".gnupg/", ".gnupg/"),
    (".docker/config.json", ".docker/config.json", "**/.docker/config.json"),
    ("deploy/.docker/config.json", "deploy/.docker/config.json", "**/.docker/config.json"),
    ("deploy/.kube/config", "deploy/.kube/config", "**/.kube/config"),
    ("kubeconfig", "kubeconfig", "kubeconfig"),
    ("prod.kubeconfig", "prod.kubeconfig", "*.kubeconfig"),
    (".htpasswd", ".htpasswd", ".htpasswd"), (".my.cnf", ".my.cnf", ".my.cnf"),
    (".vault-token", ".vault-token", ".vault-token"), (".s3cfg", ".s3cfg", ".s3cfg"),
    ("certs/server.pem", "certs/server.pem", "*.pem"), ("tls.key", "tls.key", "*.key"),
    ("AuthKey_ABC.p8", "AuthKey_ABC.p8", "*.p8"), ("putty.ppk", "putty.ppk", "*.ppk"),
    ("client.p12", "client.p12", "*.p12"), ("client.pfx", "client.pfx", "*.pfx"),
    ("trust.jks", "trust.jks", "*.jks"), ("release.keystore", "release.keystore", "*.keystore"),
    ("svc.keytab", "svc.keytab", "*.keytab"), ("vault.kdbx", "vault.kdbx", "*.kdbx"),
    ("id_rsa", "id_rsa", "id_rsa*"), ("keys/id_dsa", "keys/id_dsa", "id_dsa*"),
    ("id_ecdsa_sk", "id_ecdsa_sk", "id_ecdsa*"), ("id_ed25519", "id_ed25519", "id_ed25519*"),
    ("credentials", "credentials", "credentials"),
    ("credentials.json", "credentials.json", "*credentials.json"),
    ("application_default_credentials.json", "application_default_credentials.json",
     "*credentials.json"),
    ("credentials.toml", "credentials.toml", "credentials.toml"),
    ("credentials.csv", "credentials.csv", "credentials.csv"),
    ("ci_accessKeys.csv", "ci_accessKeys.csv", "*_accesskeys.csv"),
    ("secrets.yaml", "secrets.yaml", "secrets.yaml"), ("secrets.yml", "secrets.yml", "secrets.yml"),
    ("client_secret_1234.apps.googleusercontent.com.json",
     "client_secret_1234.apps.googleusercontent.com.json", "*secret*.json"),
    ("my-secret.json", "my-secret.json", "*secret*.json"),
    ("sa_key.json", "sa_key.json", "*_key.json"),
    ("service-account-prod.json", "service-account-prod.json", "service-account*.json"),
    ("service_account.json", "service_account.json", "service_account*.json"),
    ("infra/prod.tfvars", "infra/prod.tfvars", "*.tfvars"),
    ("infra/terraform.tfstate", "infra/terraform.tfstate", "*.tfstate"),
    ("infra/terraform.tfstate.backup", "infra/terraform.tfstate.backup", "*.tfstate.*"),
    (".terraformrc", ".terraformrc", ".terraformrc"),
    (".config/gh/hosts.yml", ".config/gh/hosts.yml", "**/.config/gh/hosts.yml"),
    (".config/gcloud/credentials.db", ".config/gcloud/", "**/.config/gcloud/"),
    (".config/gcloud/access_tokens.db", ".config/gcloud/", "**/.config/gcloud/"),
    (".terraform.d/credentials.tfrc.json", ".terraform.d/credentials.tfrc.json",
     "credentials.tfrc.json"),
    (".yarnrc.yml", ".yarnrc.yml", ".yarnrc.yml"),
    ("private.asc", "private.asc", "*.asc"), ("key.gpg", "key.gpg", "*.gpg"),
    (".pip/pip.conf", ".pip/pip.conf", "pip.conf"), ("pip.conf", "pip.conf", "pip.conf"),
    ("pip.ini", "pip.ini", "pip.ini"),
    (".m2/settings.xml", ".m2/settings.xml", "**/.m2/settings.xml"),
    (".m2/settings-security.xml", ".m2/settings-security.xml", "**/.m2/settings-security.xml"),
    ("client.ovpn", "client.ovpn", "*.ovpn"),
    (".bash_history", ".bash_history", ".*_history"),
    (".python_history", ".python_history", ".*_history"),
    (".zsh_history", ".zsh_history", ".*_history"),
    ("wallet.dat", "wallet.dat", "wallet.dat"),
]


@pytest.mark.parametrize("name,shown,rule", SECRET_FILES, ids=[f[0] for f in SECRET_FILES])
def test_every_secret_looking_name_is_left_out_with_its_rule(tmp_path, name, shown, rule):
    tree(tmp_path, {**BASE, name: "password=hunter2\n"})
    listing = list_files(tmp_path)
    assert {e.path for e in listing.files} == set(BASE)
    assert listing.excluded == [(shown, f"secret '{rule}'")]
    (secret,) = listing.secrets
    assert secret["path"] == shown and secret["rule"] == rule and secret["kind"]


@pytest.mark.parametrize("name", ["ID_RSA", ".ENV", "Prod.ENV", ".NpmRc", "Secrets.JSON",
                                  ".KUBE/CONFIG", "certs/SERVER.PEM", ".Streamlit/Secrets.Toml",
                                  "GCP-KEY.JSON", ".AWS/credentials", "Id_Ed25519", ".ENVRC",
                                  ".PGPASS", "Terraform.TFSTATE"])
def test_names_differing_only_in_case_are_secrets_too(tmp_path, name):
    tree(tmp_path, {**BASE, name: "secret"})
    listing = list_files(tmp_path)
    assert {e.path for e in listing.files} == set(BASE)
    (path, reason), = listing.excluded
    assert reason.startswith("secret '") and name.startswith(path.rstrip("/"))


def test_ordinary_project_files_are_not_taken_for_secrets(tmp_path):
    files = {**BASE, "python_env.yaml": "python: '3.11'\n", "conda.yaml": "name: x\n",
             "requirements.txt": "numpy\n", "environment.yml": "name: y\n",
             ".gitignore": "*.log\n", "id_rsa.pub": "ssh-rsa AAAA", "keys/ID_ED25519.PUB": "x",
             "credentials.py": "def load(): ...\n", "secret_sauce.py": "", "keys.py": "",
             "key_metrics.csv": "a,b\n", "tokenizer.json": "{}", "monkey.json": "{}",
             "settings.toml": "", ".envoy.yaml": "", "environment.py": "", "keynote.md": "",
             "data/passwords_dataset.csv": "", "src/secrets_manager.py": ""}
    tree(tmp_path, files)
    assert included(tmp_path) == set(files)
    assert list_files(tmp_path).secrets == []


def test_a_secret_is_reincluded_only_by_a_pattern_that_names_it(tmp_path):
    tree(tmp_path, {**BASE, "ID_RSA": "k", ".npmrc": "t", "prod.env": "A=1",
                    ".kube/config": "c", ".mlflowignore": "!ID_RSA\n!*.env\n"})
    assert included(tmp_path) == set(BASE) | {".mlflowignore", "ID_RSA", "prod.env"}
    assert [s["path"] for s in list_files(tmp_path).secrets] == [".kube/config", ".npmrc"]
    # Git matches case-sensitively, and so does the ignore file: '!id_rsa' is not 'ID_RSA'.
    (tmp_path / ".mlflowignore").write_text("!id_rsa\n!**/.kube/config\n")
    assert included(tmp_path) == set(BASE) | {".mlflowignore", ".kube/config"}
    # Catch-alls never bring secrets back.
    (tmp_path / ".mlflowignore").write_text("!*\n!**\n!*.*\n")
    assert included(tmp_path) == set(BASE) | {".mlflowignore"}


def test_gitignore_negations_reinclude_secrets_too(tmp_path):
    tree(tmp_path, {**BASE, ".gitignore": "*.log\n!.env.example\n", ".env.example": "A=",
                    "sub/.gitignore": "!secrets.json\n", "sub/secrets.json": "{}",
                    "secrets.json": "{}"})
    assert included(tmp_path) == set(BASE) | {".gitignore", ".env.example", "sub/.gitignore",
                                              "sub/secrets.json"}
    assert reasons(tmp_path) == {"secrets.json": "secret 'secrets.json'"}


def test_the_archive_lists_what_it_left_out_as_secret_and_why(tmp_path):
    from mlrun_magic.packaging import build_archive

    secrets = {".env": "", "prod.env": "", "ID_RSA": "", ".kube/config": "", "gcp-key.json": ""}
    tree(tmp_path / "p", {**BASE, **secrets, "mlruns/0/x": "", "notes.log": "",
                          ".mlflowignore": "*.log\n"})
    archive = build_archive(tmp_path / "p", out_dir=tmp_path / "out", use_cache=False)
    listed = archive.to_dict()["excluded_secrets"]
    assert listed == [
        {"path": ".env", "rule": ".env", "kind": "dotenv file"},
        {"path": ".kube/config", "rule": "**/.kube/config",
         "kind": "kubeconfig with cluster credentials"},
        {"path": "ID_RSA", "rule": "id_rsa*", "kind": "SSH private key"},
        {"path": "gcp-key.json", "rule": "*-key.json", "kind": "service-account key"},
        {"path": "prod.env", "rule": "*.env", "kind": "dotenv file"},
    ]
    assert listed == list_files(tmp_path / "p").to_dict()["excluded_secrets"]
    summary = archive.summary()
    assert "Left out as secrets: .env (dotenv file, rule '.env'); .kube/config (" in summary
    assert "gcp-key.json (service-account key, rule '*-key.json')" in summary
    assert "notes.log" not in summary.split("Left out as secrets")[1]
    assert "name it in .mlflowignore with '!'" in summary
    import tarfile

    with tarfile.open(archive.path) as tar:
        names = {m.name.split("/", 1)[1] for m in tar.getmembers() if "/" in m.name}
    assert names == {"MLproject", "train.py", ".mlflowignore", ".kube"}  # .kube/ now empty


def test_the_summary_names_ten_secrets_and_counts_the_rest(tmp_path):
    from mlrun_magic.packaging import build_archive

    tree(tmp_path / "p", {**BASE, **{f"k{i:02d}.pem": "" for i in range(13)}})
    archive = build_archive(tmp_path / "p", out_dir=tmp_path / "out", use_cache=False)
    assert len(archive.to_dict()["excluded_secrets"]) == 13
    summary = archive.summary()
    assert "k09.pem (private key or certificate, rule '*.pem'); and 3 more." in summary
    assert "k10.pem" not in summary


def test_the_dry_run_view_shows_the_secrets_left_out(tmp_path):
    from mlrun_magic.notebook.render import PlanView
    from mlrun_magic.packaging import build_archive

    tree(tmp_path / "p", {**BASE, ".envrc": "export T=1", "<b>.pem": ""})
    archive = build_archive(tmp_path / "p", out_dir=tmp_path / "out", use_cache=False)
    plan = {"project_name": "x", "project_dir": str(tmp_path / "p"), "entry_point": "main",
            "parameters": {}, "command": "python train.py", "backend": "databricks",
            "env": {"type": "python_env", "origin": "MLproject", "manager": "local"}}
    view = PlanView(plan, {"compute": "new cluster", "archive": archive.to_dict(),
                           "code_location": {"kind": "workspace", "archive": "/W/a.tar.gz"},
                           "submit": {"endpoint": "POST x", "body": {}}})
    text = view.text()
    assert ("  Secrets:       left out: .envrc (direnv environment file, rule '.envrc'), "
            "<b>.pem (private key") in text
    assert "&lt;b&gt;.pem" in view.html() and "<b>.pem" not in view.html()


def test_the_one_pass_secret_check_agrees_with_every_rule():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from mlrun_magic.packaging.ignore import _ANY_SECRET, _SECRET_RULES

    pieces = st.sampled_from(["", ".", "/", "env", "id_rsa", ".pub", "secret", "-key", ".json",
                              "kube", "config", ".aws", ".ssh/", "credentials", "tfstate", "x"])

    @settings(max_examples=400, deadline=None)
    @given(st.lists(pieces, max_size=6).map("".join))
    def agree(path):
        assert (_ANY_SECRET.search(path) is not None) == any(r.matches(path) for r in _SECRET_RULES)

    agree()
    for name, shown, _ in SECRET_FILES:
        assert _ANY_SECRET.search(name.lower()) and _ANY_SECRET.search(shown.lower())


@pytest.mark.parametrize("ignore_file", [".gitignore", ".mlflowignore"])
def test_reincluding_a_folder_does_not_bring_back_the_secrets_in_it(tmp_path, ignore_file):
    secrets = {"data/configs/.env": "A=1", "data/configs/id_ed25519": "k",
               "data/configs/deep/.npmrc": "t"}
    tree(tmp_path, {**BASE, **secrets, "data/raw.csv": "", "data/configs/params.yaml": "",
                    ignore_file: "data/*\n!data/configs/\n"})
    assert included(tmp_path) == set(BASE) | {ignore_file, "data/configs/params.yaml"}
    assert [s["path"] for s in list_files(tmp_path).secrets] == sorted(secrets)
    # A catch-all below the folder names nothing either; a pattern naming the file does.
    (tmp_path / ignore_file).write_text("data/*\n!data/configs/\n!data/configs/**\n"
                                        "!data/configs/.env\n")
    assert included(tmp_path) == set(BASE) | {ignore_file, "data/configs/params.yaml",
                                              "data/configs/.env"}


def test_a_secret_folder_reincluded_by_name_still_keeps_the_keys_in_it(tmp_path):
    tree(tmp_path, {**BASE, ".ssh/known_hosts": "h", ".ssh/id_rsa": "k",
                    ".mlflowignore": "!.ssh/\n!.ssh/known_hosts\n"})
    assert included(tmp_path) == set(BASE) | {".mlflowignore", ".ssh/known_hosts"}
    assert [s["path"] for s in list_files(tmp_path).secrets] == [".ssh/id_rsa"]


def test_new_secret_rules_leave_look_alikes_packed(tmp_path):
    files = {**BASE, "pip.conf.md": "", "settings.xml": "<x/>", "history.py": "",
             "notes_history.txt": "", "wallet.py": "", "config/hosts.yml": "",
             ".config/app.toml": ""}
    tree(tmp_path, files)
    assert included(tmp_path) == set(files)


def test_the_rules_version_is_part_of_the_manifest_fingerprint(tmp_path):
    from mlrun_magic.packaging.ignore import RULES_VERSION, IgnoreRules

    assert RULES_VERSION == "4"
    import hashlib

    expected = hashlib.sha256(f"rules-v{RULES_VERSION}\n".encode()).hexdigest()
    assert IgnoreRules.for_project(tmp_path).fingerprint() == expected
