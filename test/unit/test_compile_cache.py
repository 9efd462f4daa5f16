"""torch.compile's cache must survive a reboot (its default is under /tmp, which JetPack's Ubuntu empties)."""

from __future__ import annotations

from ishowtts_ros.engines.f5.cache import persistent_compile_cache


def test_compile_cache_defaults_to_the_user_cache_folder(tmp_path):
    environ = {"XDG_CACHE_HOME": str(tmp_path)}
    assert persistent_compile_cache(environ) == str(tmp_path / "ishowtts_ros" / "torchinductor")
    assert environ["TORCHINDUCTOR_CACHE_DIR"] == str(tmp_path / "ishowtts_ros" / "torchinductor")


def test_compile_cache_the_user_chose_is_kept(tmp_path):
    environ = {"XDG_CACHE_HOME": str(tmp_path), "TORCHINDUCTOR_CACHE_DIR": "/srv/robot/inductor"}
    assert persistent_compile_cache(environ) == "/srv/robot/inductor"
    assert environ["TORCHINDUCTOR_CACHE_DIR"] == "/srv/robot/inductor"
