#!/bin/sh
# Build llama.cpp's own C++ server (`llama-server`) from the llama.cpp source that
# the pinned, hash-checked llama-cpp-python sdist vendors (requirements/llm.txt):
# only PyPI and a C++ compiler are needed. Beside llama-cpp-python's Python server
# it decodes 3x faster on two cores and serves several calls at once (--parallel).
#
#   LLAMA_CMAKE="-DGGML_AVX2=ON ..." sh requirements/build_llama_server.sh PYTHON DEST_DIR
set -eu
py=$1
dest=$2
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$py" -m pip --disable-pip-version-check download -q --no-deps --no-binary :all: --require-hashes \
    -r "$here/llm.txt" -d "$work"
tar xzf "$work"/llama_cpp_python-*.tar.gz -C "$work"
src=$(echo "$work"/llama_cpp_python-*/vendor/llama.cpp)

cmake=$(command -v cmake || true)
if [ -z "$cmake" ]; then
    "$py" -m pip --disable-pip-version-check install -q cmake
    cmake=$(dirname "$py")/cmake
fi
# Static, no network at build or run time (no curl, no prebuilt web UI).
# shellcheck disable=SC2086  # LLAMA_CMAKE is a list of flags
"$cmake" -S "$src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release ${LLAMA_CMAKE:-} \
    -DBUILD_SHARED_LIBS=OFF -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF \
    -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_SERVER=ON >/dev/null
"$cmake" --build "$work/build" --target llama-server -j "$(nproc 2>/dev/null || echo 2)"

mkdir -p "$dest"
cp "$work/build/bin/llama-server" "$dest/llama-server.part"
mv "$dest/llama-server.part" "$dest/llama-server"
