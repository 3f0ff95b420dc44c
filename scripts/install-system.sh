#!/usr/bin/env bash
# Debian packages the demo and the tests need, installed once (one apt-get update, only
# when something is missing). Run as root, or with sudo available.
set -euo pipefail
PACKAGES=(
  request-tracker5 rt5-db-sqlite rt5-standalone   # the embedded desk (Request Tracker 5)
  fonts-wqy-microhei                              # Chinese labels in report charts
  chromium chromium-driver                        # report mail at phone/desktop width; report PDF
  poppler-utils                                   # pdffonts/pdftotext: the tests read the PDF back
  gnumeric                                        # ssconvert: an independent reader of workbooks
  docker-compose postgresql redis-server          # tests/deploy: compose config, Celery run
)
missing=()
for p in "${PACKAGES[@]}" ${EXTRA_PACKAGES:-}; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if (( ${#missing[@]} == 0 )); then
  echo "system packages present"
else
  SUDO=""
  [[ $(id -u) -eq 0 ]] || SUDO="sudo"
  echo "installing ${missing[*]} (about a minute)"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
# Debian updates RT under us (5.0.3+dfsg-3~deb12u7 changed REST2): say which one we run on.
# tests/integration/test_desk_contract.py names it too when the desk behaves differently.
echo "Request Tracker: request-tracker5 $(dpkg-query -W -f='${Version}' request-tracker5)"
