# Two commands set everything up on a fresh machine: `make demo` (main job) and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install -q --disable-pip-version-check
# CPU machines: pin torch so pip takes the CPU wheel instead of a multi-GB CUDA build.
TORCH ?= torch==2.13.0

.PHONY: demo test lint bench clean

$(VENV)/.base: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) --upgrade pip
	$(PIP) -e .
	touch $@

$(VENV)/.dev: $(VENV)/.base
	$(PIP) $(TORCH)
	$(PIP) -e '.[export,test,scale,zoo,train]'
	# the serve extra without nvidia-pytriton's numpy<2 pin (colorrt serve runs only its tritonserver)
	$(PIP) 'tritonclient[http,grpc]>=2.40' && $(PIP) --no-deps 'nvidia-pytriton>=0.7'
	touch $@

demo: $(VENV)/.base
	mkdir -p out
	$(VENV)/bin/colorrt colorize examples/old_photo.jpg -o out/old_photo_color.png
	$(VENV)/bin/colorrt colorize examples/old_film.mp4 -o out/old_film_color.mkv

lint: $(VENV)/.dev
	$(VENV)/bin/ruff check colorrt tests benchmarks training
	$(VENV)/bin/ruff format --check colorrt tests benchmarks training

test: lint
	$(PY) -m pytest -q

bench: $(VENV)/.dev
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) out .pytest_cache
