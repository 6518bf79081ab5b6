"""Engine cache: store/reuse by key, integrity checks, atomic writes, unwritable-folder fallback."""

from __future__ import annotations

import hashlib
import tempfile
import warnings

import pytest

from colorrt.contract import PRESETS
from colorrt.engines import cache as cache_module
from colorrt.engines.cache import CacheWarning, EngineCache
from colorrt.engines.tensorrt.facts import EngineFacts, read_facts, sidecar_path, write_facts
from colorrt.engines.tensorrt.profiles import derive_profiles, parse_shape_ranges
from colorrt.errors import BackendError

KEY = "0123456789abcdef" * 4
OTHER_KEY = "fedcba9876543210" * 4
PLAN = b"\x00serialized-plan\xff" * 100


@pytest.fixture(autouse=True)
def private_temp_dir(tmp_path, monkeypatch):
    """Keep the fallback folder (under the system temp dir) inside the test's own folder."""
    systmp = tmp_path / "systmp"
    systmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(systmp))
    monkeypatch.delenv(cache_module.ENV_VAR, raising=False)
    return systmp


def facts() -> EngineFacts:
    profiles = derive_profiles(PRESETS["cyclegan-rgb"], parse_shape_ranges("1:4:16"))
    return EngineFacts(
        contract=PRESETS["cyclegan-rgb"],
        precision="fp16",
        profiles=tuple(profiles),
        trt_version="11.0.0.1",
        gpu_name="NVIDIA H100 80GB HBM3",
        compute_capability="9.0",
        onnx_sha256="ab" * 32,
    )


def test_put_then_get_returns_the_same_plan_with_completed_facts(tmp_path):
    cache = EngineCache(tmp_path / "engines")
    assert cache.get(KEY) is None
    stored = cache.put(KEY, PLAN, facts())
    assert stored == tmp_path / "engines" / f"{KEY}.plan"
    assert cache.get(KEY) == stored and stored.read_bytes() == PLAN
    saved = read_facts(stored)
    assert saved.cache_key == KEY and saved.plan_size == len(PLAN)
    assert saved.plan_sha256 == hashlib.sha256(PLAN).hexdigest()
    assert saved.contract == PRESETS["cyclegan-rgb"]
    assert cache.get(OTHER_KEY) is None
    assert sorted(p.name for p in (tmp_path / "engines").iterdir()) == [f"{KEY}.plan", f"{KEY}.plan.json"]


def test_a_second_cache_object_sees_the_entry(tmp_path):
    EngineCache(tmp_path).put(KEY, PLAN, facts())
    assert EngineCache(tmp_path).facts(KEY).precision == "fp16"


@pytest.mark.parametrize("damage", ["flip_byte", "truncate", "wrong_key", "no_facts", "bad_facts"])
def test_corrupt_entries_are_dropped_so_the_engine_is_rebuilt(tmp_path, damage):
    cache = EngineCache(tmp_path)
    stored = cache.put(KEY, PLAN, facts())
    side = sidecar_path(stored)
    if damage == "flip_byte":
        data = bytearray(PLAN)
        data[5] ^= 0xFF
        stored.write_bytes(bytes(data))
    elif damage == "truncate":
        stored.write_bytes(PLAN[:-7])
    elif damage == "wrong_key":
        write_facts(stored, read_facts(stored).replace(cache_key=OTHER_KEY))
    elif damage == "no_facts":
        side.unlink()
    else:
        side.write_text("{broken")
    with pytest.warns(CacheWarning, match="will be rebuilt"):
        assert cache.get(KEY) is None
    assert not stored.exists() and not side.exists()
    assert cache.put(KEY, PLAN, facts()) == stored and cache.get(KEY) == stored


def test_writes_leave_no_temporary_files(tmp_path):
    cache = EngineCache(tmp_path)
    cache.put(KEY, PLAN, facts())
    cache.put(KEY, PLAN + b"v2", facts())  # overwrite in place
    assert cache.get(KEY).read_bytes() == PLAN + b"v2"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_unwritable_folder_falls_back_with_a_warning(tmp_path, private_temp_dir):
    # Tests run as root, where chmod does not stop writes: a path under a regular file does.
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("file")
    with pytest.warns(CacheWarning, match="not writable") as record:
        cache = EngineCache(blocker / "engines")
    assert "COLORRT_CACHE_DIR" in str(record[0].message)
    assert cache.folder == cache_module.fallback_cache_dir()
    assert cache.folder.parent == private_temp_dir
    assert cache.fallback_reason
    stored = cache.put(KEY, PLAN, facts())
    assert stored.parent == cache.folder and cache.get(KEY) == stored


def test_folder_that_breaks_after_creation_falls_back_on_put(tmp_path):
    folder = tmp_path / "engines"
    cache = EngineCache(folder)
    folder.rmdir()
    folder.write_text("now a file")
    with pytest.warns(CacheWarning, match="not writable"):
        stored = cache.put(KEY, PLAN, facts())
    assert stored.parent == cache_module.fallback_cache_dir() and stored.read_bytes() == PLAN


def test_no_writable_folder_at_all_is_an_error(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    monkeypatch.setattr(cache_module, "fallback_cache_dir", lambda: blocker / "fallback")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(BackendError, match="unusable") as err:
            EngineCache(blocker / "engines")
    assert "COLORRT_CACHE_DIR" in err.value.hint


def test_cache_folder_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(cache_module.ENV_VAR, str(tmp_path / "from-env"))
    assert cache_module.default_cache_dir() == tmp_path / "from-env"
    assert EngineCache().folder == tmp_path / "from-env"
    monkeypatch.delenv(cache_module.ENV_VAR)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_module.default_cache_dir() == tmp_path / "xdg" / "colorrt" / "engines"


def test_keys_must_be_hex_digests(tmp_path):
    cache = EngineCache(tmp_path)
    for bad in ("../escape", "ABCDEF0123456789", "short"):
        with pytest.raises(BackendError, match="hex digest"):
            cache.plan_path(bad)


def test_invalidate_removes_both_files(tmp_path):
    cache = EngineCache(tmp_path)
    stored = cache.put(KEY, PLAN, facts())
    cache.invalidate(KEY)
    assert not stored.exists() and not sidecar_path(stored).exists()
    cache.invalidate(KEY)  # nothing left: still fine


def test_timing_cache_path_is_per_tensorrt_version_and_gpu(tmp_path):
    cache = EngineCache(tmp_path)
    h100 = cache.timing_cache_path("11.0.0.1", "NVIDIA H100 80GB HBM3")
    assert h100.parent == tmp_path and h100.name == "timing-11.0.0.1-NVIDIA_H100_80GB_HBM3.cache"
    assert cache.timing_cache_path("11.0.0.1", "NVIDIA H200") != h100
    assert cache.timing_cache_path("11.1.0.3", "NVIDIA H100 80GB HBM3") != h100
