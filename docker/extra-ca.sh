# shellcheck shell=sh
# extra-ca.sh: sourced (`. /usr/local/lib/harness-docker/extra-ca.sh`) at the start of every RUN of
# docker/Dockerfile* that downloads (apt, pip, curl, git), so that a build behind a TLS-intercepting proxy
# trusts the proxy's certificate authority:
#
#   docker build --secret id=ca,src=/etc/ssl/certs/ca-certificates.crt -f docker/Dockerfile .
#
# The certificates come from the optional BuildKit secret `ca`, which exists only during a RUN that mounts
# it (`RUN --mount=type=secret,id=ca`) and is never part of a layer. Without the secret this does nothing.
# With it, the system's certificate authorities (where ca-certificates is installed) plus the secret's are
# written to one bundle in a private temporary directory, removed when the RUN's shell exits (so it is in
# no layer either), and every downloader of the build is pointed at it: pip (PIP_CERT), apt
# (Acquire::https::CAInfo through APT_CONFIG, which apt reads besides its own configuration), curl, git,
# and Python's ssl module (SSL_CERT_FILE).
harness_ca_secret=${HARNESS_CA_SECRET:-/run/secrets/ca}
if [ -s "$harness_ca_secret" ]; then
  harness_ca_dir=$(mktemp -d)
  trap 'rm -rf "$harness_ca_dir"' EXIT
  {
    if [ -f /etc/ssl/certs/ca-certificates.crt ]; then cat /etc/ssl/certs/ca-certificates.crt; fi
    cat "$harness_ca_secret"
  } >"$harness_ca_dir/ca.pem"
  printf 'Acquire::https::CAInfo "%s";\n' "$harness_ca_dir/ca.pem" >"$harness_ca_dir/apt.conf"
  export APT_CONFIG="$harness_ca_dir/apt.conf" PIP_CERT="$harness_ca_dir/ca.pem" \
    SSL_CERT_FILE="$harness_ca_dir/ca.pem" REQUESTS_CA_BUNDLE="$harness_ca_dir/ca.pem" \
    CURL_CA_BUNDLE="$harness_ca_dir/ca.pem" GIT_SSL_CAINFO="$harness_ca_dir/ca.pem"
fi
unset harness_ca_secret
