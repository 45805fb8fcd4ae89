#!/bin/sh
# pip install "$@" into the image's venv, inside deploy/Containerfile's build stage.
# Extra CA certificates (a TLS-intercepting proxy) come in as the optional build secret
# extra_ca, joined to the system's for this one command and never written into a layer:
#   podman build --secret id=extra_ca,src=/usr/local/share/ca-certificates/proxy.crt ...
# PIP_INDEX_URL / PIP_EXTRA_INDEX_URL: the build arguments of the same names.
set -eu
ca=/etc/ssl/certs/ca-certificates.crt
if [ -s /run/secrets/extra_ca ]; then
    cat "$ca" /run/secrets/extra_ca > /tmp/ca.pem
    ca=/tmp/ca.pem
fi
trap 'rm -f /tmp/ca.pem' EXIT
PIP_CERT="$ca" /opt/helpdesk-qa/bin/pip install --no-cache-dir --disable-pip-version-check --no-compile \
    ${PIP_INDEX_URL:+--index-url "$PIP_INDEX_URL"} ${PIP_EXTRA_INDEX_URL:+--extra-index-url "$PIP_EXTRA_INDEX_URL"} \
    "$@"
