"""Write tiny random Llasa / X-Codec2 / WavLM / Whisper models into a folder, for tests and demos.

python scripts/make_tiny_models.py DIR
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path, help="folder to write llasa/, xcodec2/, wavlm/ and whisper/ into")
    args = parser.parse_args(argv)

    from llasa_cli.testing.tiny_models import build_tiny_models

    models = build_tiny_models(args.directory)
    for name in ("llasa", "xcodec2", "wavlm", "whisper"):
        path = getattr(models, name)
        print(f"{name}: {path if path is not None else 'skipped (openai-whisper is not installed)'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
