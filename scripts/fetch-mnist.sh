#!/usr/bin/env bash
# Fetch MNIST (the four IDX files, gzipped) into DIR and verify them, for machines without
# ../shared/data/mnist (GitHub Actions). The checks are on the decompressed IDX bytes, so any
# mirror's gzip of the same data passes and anything else fails; SHA256SUMS of the .gz files is
# written beside them for the prepare step (training/data.py) to check on every read.
#   scripts/fetch-mnist.sh DIR [MIRROR_URL]
# Files already in DIR that verify are not downloaded again (cache DIR between CI runs).
set -euo pipefail
DIR=${1:?usage: fetch-mnist.sh DIR [MIRROR_URL]}
MIRROR=${2:-${MNIST_MIRROR:-https://storage.googleapis.com/cvdf-datasets/mnist}}
declare -A RAW_SHA256=(
  [train-images-idx3-ubyte]=ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db
  [train-labels-idx1-ubyte]=65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5
  [t10k-images-idx3-ubyte]=0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7
  [t10k-labels-idx1-ubyte]=ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2
)
mkdir -p "$DIR"
verified() { [[ -s $1.gz ]] && [[ $(gunzip -c "$1.gz" | sha256sum | cut -d' ' -f1) == "$2" ]]; }
for name in "${!RAW_SHA256[@]}"; do
  file="$DIR/$name"
  if verified "$file" "${RAW_SHA256[$name]}"; then
    echo "[fetch-mnist] $name.gz present and verified"
    continue
  fi
  echo "[fetch-mnist] downloading $MIRROR/$name.gz"
  curl -fsSL --retry 3 -o "$file.gz.part" "$MIRROR/$name.gz"
  mv "$file.gz.part" "$file.gz"
  verified "$file" "${RAW_SHA256[$name]}" || { echo "[fetch-mnist] $name: checksum mismatch" >&2; rm -f "$file.gz"; exit 1; }
done
(cd "$DIR" && sha256sum ./*-ubyte.gz | sed 's# \./# #' >SHA256SUMS)
echo "[fetch-mnist] MNIST verified in $DIR"
