#!/usr/bin/env bash
# Prepare this machine for the sshd integration tests: OpenSSH's server and two throwaway users.
# Run as root; safe to run again (keeps the existing passwords).
#
# The accounts are disposable test logins on a CI or developer machine: shell nologin, reachable
# only through the sshd that tests/sshd.py starts on 127.0.0.1. Their passwords are therefore
# written world-readable (0644) to /etc/qc-test-sshd.env so the tests can read them without being
# root. The second user (each in a group of its own) is for the tests of what one user may see of
# another's files: a file of mode 0600 owned by the first is unreadable to the second.
set -euo pipefail

TEST_USER=qctest
TEST_USER2=qctest2
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

# make_user NAME ENV_KEY: create the account if missing, set its password (the one an earlier
# run wrote under ENV_KEY, else a new random one) and print the password.
make_user() {
    local name=$1 key=$2 password=""
    if ! id "$name" >/dev/null 2>&1; then
        echo "+ useradd $name" >&2
        useradd --system --user-group --home-dir "$DATA_DIR" --no-create-home \
            --shell /usr/sbin/nologin "$name"
    fi
    if [[ -r $ENV_FILE ]]; then
        password=$(sed -n "s/^${key}=//p" "$ENV_FILE")
    fi
    if [[ -z $password ]]; then
        password=$(head -c 18 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')
    fi
    echo "$name:$password" | chpasswd
    printf '%s' "$password"
}

password=$(make_user "$TEST_USER" QC_TEST_SSHD_PASSWORD)
password2=$(make_user "$TEST_USER2" QC_TEST_SSHD_PASSWORD2)

umask 022
printf 'QC_TEST_SSHD_USER=%s\nQC_TEST_SSHD_PASSWORD=%s\nQC_TEST_SSHD_USER2=%s\nQC_TEST_SSHD_PASSWORD2=%s\n' \
    "$TEST_USER" "$password" "$TEST_USER2" "$password2" >"$ENV_FILE.tmp"
chmod 0644 "$ENV_FILE.tmp"
mv "$ENV_FILE.tmp" "$ENV_FILE"

install -d -m 0755 -o "$TEST_USER" -g "$(id -gn "$TEST_USER")" "$DATA_DIR"
# sshd refuses to start without its privilege-separation directory.
install -d -m 0755 /run/sshd

echo "sshd test users $TEST_USER and $TEST_USER2 ready (credentials in $ENV_FILE, data under $DATA_DIR)"
