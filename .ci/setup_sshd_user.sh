#!/usr/bin/env bash
# Prepare this machine for the sshd integration tests: OpenSSH's server and a throwaway user.
# Run as root; safe to run again (keeps the existing password).
#
# The account is a disposable test login on a CI or developer machine: shell nologin, reachable
# only through the sshd that tests/sshd.py starts on 127.0.0.1. Its password is therefore written
# world-readable (0644) to /etc/qc-test-sshd.env so the tests can read it without being root.
set -euo pipefail

TEST_USER=qctest
ENV_FILE=/etc/qc-test-sshd.env
DATA_DIR=/srv/qc-sftp

if [[ $(id -u) -ne 0 ]]; then
    echo "setup_sshd_user.sh: must run as root" >&2
    exit 1
fi

if [[ ! -x /usr/sbin/sshd ]]; then
    echo "+ apt-get install openssh-server"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends openssh-server >/dev/null
fi

if ! id "$TEST_USER" >/dev/null 2>&1; then
    echo "+ useradd $TEST_USER"
    useradd --system --home-dir "$DATA_DIR" --no-create-home --shell /usr/sbin/nologin "$TEST_USER"
fi

# Reuse the password of an earlier run so a second run changes nothing.
password=""
if [[ -r $ENV_FILE ]]; then
    password=$(sed -n 's/^QC_TEST_SSHD_PASSWORD=//p' "$ENV_FILE")
fi
if [[ -z $password ]]; then
    password=$(head -c 18 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')
fi
echo "$TEST_USER:$password" | chpasswd

umask 022
printf 'QC_TEST_SSHD_USER=%s\nQC_TEST_SSHD_PASSWORD=%s\n' "$TEST_USER" "$password" >"$ENV_FILE.tmp"
chmod 0644 "$ENV_FILE.tmp"
mv "$ENV_FILE.tmp" "$ENV_FILE"

install -d -m 0755 -o "$TEST_USER" -g "$(id -gn "$TEST_USER")" "$DATA_DIR"
# sshd refuses to start without its privilege-separation directory.
install -d -m 0755 /run/sshd

echo "sshd test user $TEST_USER ready (credentials in $ENV_FILE, data under $DATA_DIR)"
