"""The file names packaging treats as secrets, and why each one is on the list.

A project archive is uploaded to a workspace that other people can read, and extracted on
clusters other people can log in to: a credential that travels in it has leaked. The list
follows what credential scanners flag by *file name* (gitleaks' and detect-secrets' path
rules, GitHub's secret-scanning and ``.gitignore`` templates): dotenv files, the config files
where tools keep tokens and passwords, private keys and keystores, cloud service-account keys,
and infrastructure state that holds secrets in clear text.

Every pattern has ``.gitignore`` syntax and is matched **case-insensitively** (``ID_RSA``,
``.ENV`` and ``Secrets.JSON`` are the same secrets on a case-insensitive file system, and on
the cluster). A match is left out unless the project's ignore file re-includes it by name
(``!.env.example``); see :mod:`mlrun_magic.packaging.ignore`. Public halves of key pairs
(``id_rsa.pub``) are not secrets and are packed.
"""

from __future__ import annotations

#: ``(pattern, what it is)``: the pattern is matched against the lower-cased project-relative
#: path; the description is shown next to each excluded path in the dry run. Examples of what
#: the generic names catch: ``.streamlit/secrets.toml``, Cargo's ``credentials.toml``, an AWS
#: access-key download, gcloud's ``application_default_credentials.json``, an OAuth
#: ``client_secret_<id>.json``.
SECRET_RULES: tuple[tuple[str, str], ...] = (
    # Environment files: KEY=value lines, the usual home of API keys and passwords.
    (".env", "dotenv file"),
    (".env.*", "dotenv file"),
    ("*.env", "dotenv file"),
    (".envrc", "direnv environment file"),
    # Tool configuration that stores tokens or passwords.
    (".netrc", "netrc login file"),
    ("_netrc", "netrc login file"),
    (".git-credentials", "git credential store"),
    (".npmrc", "npm config with registry tokens"),
    (".pypirc", "PyPI upload credentials"),
    (".pgpass", "PostgreSQL password file"),
    (".my.cnf", "MySQL client config with a password"),
    (".databrickscfg", "Databricks CLI profiles with tokens"),
    ("**/.databricks/token-cache.json", "Databricks OAuth token cache"),
    (".htpasswd", "HTTP basic-auth password file"),
    (".s3cfg", "s3cmd credentials"),
    (".boto", "boto/gsutil credentials"),
    (".dockercfg", "Docker registry credentials"),
    ("**/.docker/config.json", "Docker registry credentials"),
    ("**/.kube/config", "kubeconfig with cluster credentials"),
    ("kubeconfig", "kubeconfig with cluster credentials"),
    ("*.kubeconfig", "kubeconfig with cluster credentials"),
    (".vault-token", "HashiCorp Vault token"),
    (".terraformrc", "Terraform CLI config with API tokens"),
    ("terraform.rc", "Terraform CLI config with API tokens"),
    ("credentials.tfrc.json", "Terraform Cloud API tokens"),
    (".yarnrc.yml", "Yarn config with registry tokens"),
    ("**/.config/gh/hosts.yml", "GitHub CLI OAuth token"),
    ("pip.conf", "pip config with index credentials"),
    ("pip.ini", "pip config with index credentials"),
    ("**/.m2/settings.xml", "Maven settings with repository passwords"),
    ("**/.m2/settings-security.xml", "Maven master password"),
    ("*.ovpn", "OpenVPN profile with keys"),
    # Shell and REPL histories: commands typed with tokens in them (.bash_history,
    # .zsh_history, .python_history, .psql_history...).
    (".*_history", "shell or REPL history"),
    # Folders that hold nothing but credentials.
    (".ssh/", "SSH keys and config"),
    (".aws/", "AWS credentials and config"),
    (".azure/", "Azure CLI token cache"),
    (".gnupg/", "GnuPG keyring"),
    ("**/.config/gcloud/", "gcloud credential and token databases"),
    # Generic credential and secret files, wherever a framework puts them.
    ("credentials", "credentials file"),
    ("credentials.yaml", "credentials file"),
    ("credentials.yml", "credentials file"),
    ("credentials.toml", "credentials file"),
    ("credentials.ini", "credentials file"),
    ("credentials.csv", "credentials file"),
    ("*_accesskeys.csv", "AWS access key download"),
    ("*credentials.json", "credentials file"),
    ("secrets.json", "secrets file"),
    ("secrets.yaml", "secrets file"),
    ("secrets.yml", "secrets file"),
    ("secrets.toml", "secrets file"),
    ("*secret*.json", "secret key file"),
    # Cloud service-account keys, as the consoles name the downloads.
    ("*-key.json", "service-account key"),
    ("*_key.json", "service-account key"),
    ("service-account*.json", "service-account key"),
    ("service_account*.json", "service-account key"),
    # Private keys, certificates with keys, keystores.
    ("*.pem", "private key or certificate"),
    ("*.key", "private key"),
    ("*.p8", "PKCS #8 private key"),
    ("*.ppk", "PuTTY private key"),
    ("*.p12", "PKCS #12 keystore"),
    ("*.pfx", "PKCS #12 keystore"),
    ("*.jks", "Java keystore"),
    ("*.keystore", "keystore"),
    ("*.keytab", "Kerberos keytab"),
    ("*.kdbx", "KeePass password database"),
    # Exported PGP keys. An armored .asc may also be a public key or a signature: left out all
    # the same (a private key is the common case, and '!name.asc' packs a signature).
    ("*.asc", "PGP key or signature (ASCII-armored)"),
    ("*.gpg", "PGP key, keyring or encrypted file"),
    ("wallet.dat", "cryptocurrency wallet"),
    ("id_rsa*", "SSH private key"),
    ("id_dsa*", "SSH private key"),
    ("id_ecdsa*", "SSH private key"),
    ("id_ed25519*", "SSH private key"),
    # Infrastructure state and variables: Terraform writes secrets there in clear text.
    ("*.tfvars", "Terraform variables"),
    ("*.tfvars.json", "Terraform variables"),
    ("*.tfstate", "Terraform state"),
    ("*.tfstate.*", "Terraform state backup"),
)

#: Matches of a rule above that are not secrets after all (also lower-cased): the public
#: half of an SSH key pair, or its certificate.
NOT_SECRET: tuple[str, ...] = ("id_*.pub",)
