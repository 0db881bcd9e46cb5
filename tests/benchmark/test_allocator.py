"""The glibc thresholds are applied on Linux and can be switched off."""

from __future__ import annotations

import platform

import pytest

from benchmark.allocator import keep_freed_memory


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_thresholds_applied_on_glibc() -> None:
    assert keep_freed_memory() is True


def test_switch_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MMIL_BENCH_MALLOC", "system")
    assert keep_freed_memory() is False
