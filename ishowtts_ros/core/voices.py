"""The voice registry: a YAML file mapping voice names to a reference clip, its transcript and its language.

Audio paths are relative to the voices file, absolute, or ``pkg://<python package>/<path inside it>`` for clips
shipped inside an installed package (the default voice uses the clip that f5-tts ships).
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ishowtts_ros.core.errors import VoiceError

PACKAGE_SCHEME = "pkg://"
VOICES_ENV = "ISHOWTTS_VOICES_FILE"


@dataclass(frozen=True)
class Voice:
    """One cloneable voice."""

    name: str
    audio: str
    text: str
    language: str = "en"
    description: str = ""
    espeak_voice: str = ""
    source_file: str = ""

    def audio_path(self) -> Path:
        """The reference clip's location on disk (not checked for existence: the engine reports that)."""
        return resolve_audio_path(self.audio, Path(self.source_file).parent if self.source_file else Path.cwd())

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "language": self.language, "description": self.description, "audio": self.audio}


def resolve_audio_path(audio: str, base: Path) -> Path:
    if audio.startswith(PACKAGE_SCHEME):
        package, _, inner = audio[len(PACKAGE_SCHEME) :].partition("/")
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise VoiceError(f"reference audio {audio!r}: Python package {package!r} is not installed")
        return Path(next(iter(spec.submodule_search_locations))) / inner
    path = Path(os.path.expanduser(audio))
    return path if path.is_absolute() else base / path


def default_voices_file() -> Path:
    """``$ISHOWTTS_VOICES_FILE``, else the ``config/voices.yaml`` installed beside this package: in a colcon
    install tree ``share/ishowtts_ros/config/`` above the Python package's folder (found on the file system: the
    core imports nothing of ROS), in the source tree ``config/`` at its root."""
    if os.environ.get(VOICES_ENV):
        return Path(os.environ[VOICES_ENV])
    here = Path(__file__).resolve()
    for folder in here.parents[2:7]:
        shared = folder / "share" / "ishowtts_ros" / "config" / "voices.yaml"
        if shared.is_file():
            return shared
    return here.parents[2] / "config" / "voices.yaml"


class VoiceRegistry:
    """Voices by name, read from one YAML file."""

    def __init__(self, voices: dict[str, Voice], default: str, source: Path) -> None:
        if not voices:
            raise VoiceError(f"voices file {source} defines no voices")
        if default not in voices:
            raise VoiceError(f"voices file {source}: default voice {default!r} is not one of {sorted(voices)}")
        self._voices = voices
        self.default = default
        self.source = source

    @classmethod
    def load(cls, path: str | Path | None = None) -> VoiceRegistry:
        """Read and check a voices file; every problem raises :class:`VoiceError` naming the file and voice."""
        source = Path(path) if path else default_voices_file()
        try:
            raw = yaml.safe_load(source.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise VoiceError(f"voices file {source} does not exist") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise VoiceError(f"voices file {source} cannot be read: {exc}") from None
        except yaml.YAMLError as exc:
            raise VoiceError(f"voices file {source} is not valid YAML: {exc}") from None
        if not isinstance(raw, dict) or not isinstance(raw.get("voices"), dict):
            raise VoiceError(f"voices file {source} must be a mapping with a 'voices:' mapping of name -> voice")
        voices = {str(name): cls._parse_voice(str(name), entry, source) for name, entry in raw["voices"].items()}
        default = str(raw.get("default") or next(iter(voices), ""))
        return cls(voices, default, source.resolve())

    @staticmethod
    def _parse_voice(name: str, entry: Any, source: Path) -> Voice:
        where = f"voice {name!r} in {source}"
        if not isinstance(entry, dict):
            raise VoiceError(f"{where} must be a mapping with audio, text and language")
        audio = entry.get("audio")
        if not isinstance(audio, str) or not audio.strip():
            raise VoiceError(f"{where} has no reference 'audio' path")
        text = entry.get("text")
        if not isinstance(text, str) or not text.strip():
            raise VoiceError(f"{where} has an empty transcript ('text'); give the exact words spoken in {audio}")
        return Voice(
            name=name,
            audio=audio.strip(),
            text=" ".join(text.split()),
            language=str(entry.get("language", "en")),
            description=str(entry.get("description", "")),
            espeak_voice=str(entry.get("espeak_voice", "")),
            source_file=str(source.resolve()),
        )

    def check_clips(self) -> None:
        """Raise :class:`VoiceError` naming every voice whose reference clip is missing or not readable audio."""
        import soundfile

        problems = []
        for voice in self._voices.values():
            try:
                soundfile.info(str(voice.audio_path()))
            except (VoiceError, RuntimeError, OSError) as exc:
                problems.append(f"voice {voice.name!r}: {exc}")
        if problems:
            raise VoiceError(f"voices file {self.source}: unusable reference audio: " + "; ".join(problems))

    def names(self) -> list[str]:
        return list(self._voices)

    def voices(self) -> list[Voice]:
        return list(self._voices.values())

    def __contains__(self, name: object) -> bool:
        return name in self._voices

    def get(self, name: str | None = None) -> Voice:
        """The named voice (the default one for ``None`` or ``""``)."""
        key = name or self.default
        try:
            return self._voices[key]
        except KeyError:
            raise VoiceError(
                f"unknown voice {key!r}; available: {', '.join(self._voices)} (voices file {self.source})"
            ) from None

    def find_by_language(self, language: str) -> Voice | None:
        """First voice whose language matches ``language`` exactly or by its primary subtag (en-US ~ en)."""
        wanted = language.lower().replace("_", "-")
        for voice in self._voices.values():
            have = voice.language.lower().replace("_", "-")
            if have == wanted or have.split("-")[0] == wanted.split("-")[0]:
                return voice
        return None
