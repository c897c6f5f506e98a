#!/usr/bin/env bash
# Fetch what benchmarks/gpu_rows.sh needs on the lent GPU machine and cannot download there: pure wheels pinned as in
# requirements/lock.txt for its Python 3.12 (our transformers, tokenizers, huggingface_hub and peft versions over the
# image's newer ones; gymnasium and MuJoCo, which the image lacks) into .whl/, and the GL loader packages MuJoCo's
# EGL rendering needs into .gl/ (the device README's recipe). Both folders are git-ignored through .git/info/exclude
# and travel with `carry: [".whl", ".gl"]`: about 30 MB of the 64 MiB a call may send.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .git/info .whl .gl /tmp/amd64/partial
for d in /.whl/ /.gl/; do grep -qx "$d" .git/info/exclude 2>/dev/null || echo "$d" >> .git/info/exclude; done
pin() { grep -iE "^$1==" requirements/lock.txt | grep -v "python_full_version < '3.1[12]'" | head -1 | cut -d' ' -f1; }
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl \
    "$(pin transformers)" "$(pin tokenizers)" "$(pin huggingface-hub)" "$(pin peft)" "$(pin gymnasium)" \
    "$(pin farama-notifications)" "$(pin mujoco)" "$(pin mujoco-core)" "$(pin pyopengl)" "$(pin glfw)"
o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
apt-get $o update -qq
(cd .gl && apt-get $o download -qq libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2 2>/dev/null)
du -sh .whl .gl
