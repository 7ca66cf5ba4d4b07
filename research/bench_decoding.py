"""How text files in legacy encodings decode: the decoder before issue 22 against the current one.

Samples are real paragraphs cut to several lengths: KorQuAD (Korean, saved as cp949 and
EUC-KR), PolicyQA (English with curly quotes and dashes, saved as cp1252, and with accented
words, saved as ISO-8859-1), a few sentences in languages this tool is not made for (saved in
their usual code pages), files that mix UTF-8 with cp1252 or cp949, and random bytes. Each
decoding is "ok" (the original text), "refused" (a reason, nothing indexed) or "wrong"
(mojibake that would be indexed). Prints a table and writes JSON (decision 060).

    python research/bench_decoding.py --datasets-dir ../shared/datasets --out bench-decoding.json
"""

from __future__ import annotations

import argparse
import json
import random
import re
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path

from policy_qa.errors import DocumentError
from policy_qa.ingest import decode_bytes

SEED = 20261205
LENGTHS = (20, 40, 80, 200, 1000, 4000)
PER_LENGTH = 60
ACCENTED = ("café", "naïve", "résumé", "façade", "Zürich", "Société", "déjà", "señor", "Ålesund")
OTHER_LANGUAGES = {
    "ru-cp1251": ("cp1251", "Министерство опубликовало новый план развития регионов на 2025 год."),
    "pl-cp1250": ("cp1250", "Zażółć gęślą jaźń. Ministerstwo ogłosiło plan rozwoju regionów."),
    "el-cp1253": ("cp1253", "Το υπουργείο δημοσίευσε το νέο σχέδιο περιφερειακής ανάπτυξης."),
    "tr-cp1254": ("cp1254", "Bakanlık, bölgesel kalkınma için yeni planı açıkladı: ağır işçiler."),
    "zh-gbk": ("gbk", "政府发布了新的区域发展计划，支持创新集群和中小企业。"),
    "zh-big5": ("big5", "政府發布了新的區域發展計劃，支持創新集群和中小企業。"),
    "ja-shift_jis": ("shift_jis", "政府は地域発展のための新しい計画を発表しました。"),
}


def old_decode(data: bytes) -> str:
    """The decoder before issue 22: any Hangul from cp949 counted as success, else latin-1."""
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="replace")
    for encoding in ("utf-8", "cp949", "euc-kr"):
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if encoding != "utf-8" and not re.search("[\uac00-\ud7a3]", text):
            continue
        return text
    return data.decode("latin-1")


def new_decode(data: bytes) -> str | None:
    try:
        return decode_bytes(data)
    except DocumentError:
        return None


def curly(text: str) -> str:
    text = re.sub(r'"(?=\w)', "\u201c", text.replace("'", "\u2019")).replace('"', "\u201d")
    return text.replace(" - ", " \u2014 ")


def samples(root: Path, rng: random.Random) -> list[tuple[str, int, str, bytes]]:
    korquad = json.loads((root / "korquad1/KorQuAD_v1.0_dev.json").read_text())["data"]
    policyqa = json.loads((root / "policyqa/dev.json").read_text())["data"]
    korean = rng.sample([p["context"] for a in korquad for p in a["paragraphs"]], PER_LENGTH)
    english = rng.sample([p["context"] for a in policyqa for p in a["paragraphs"]], PER_LENGTH)
    out: list[tuple[str, int, str, bytes]] = []
    for length in LENGTHS:
        for text in korean:
            piece = text[:length]
            for encoding in ("cp949", "euc-kr"):
                try:
                    data = piece.encode(encoding)
                except UnicodeEncodeError:
                    continue  # a character outside the code page: no such file exists
                if data == piece.encode("cp949"):  # not Python's 8-byte EUC-KR make-up form
                    out.append((f"ko-{encoding}", length, piece, data))
        for text in english:
            piece = curly(text[:length])
            if piece.isascii():
                piece = piece[:-1] + "\u2019"
            out.append(("en-cp1252", length, piece, piece.encode("cp1252", "ignore")))
            words = text[:length].split(" ")
            for i in range(0, len(words), 12):
                words[i] = rng.choice(ACCENTED)
            accented = " ".join(words)
            out.append(("en-latin1", length, accented, accented.encode("latin-1", "ignore")))
        for text in korean[:10]:
            piece = text[:length]
            head = f"Summary \u2014 {english[0][:length]}\n"
            for name, tail in (("cp1252", "The Ministry\u2019s plan.\n"), ("cp949", piece)):
                try:
                    mixed = head.encode() + tail.encode(name)
                except UnicodeEncodeError:
                    continue
                out.append((f"mixed-utf8+{name}", length, head + tail, mixed))
        out.append(("random-bytes", length, "", rng.randbytes(length * 4)))
    for kind, (encoding, sentence) in OTHER_LANGUAGES.items():
        for repeat in (1, 5, 20):
            text = " ".join([sentence] * repeat)
            out.append((kind, len(text), text, text.encode(encoding)))
    return out


def outcome(decoded: str | None, truth: str, kind: str) -> str:
    if decoded is None:
        return "refused"
    if kind.startswith(("random", "mixed")):
        return "wrong"  # nothing right can come of these but a refusal
    # A latin-1 file and its cp1252 reading agree on every printable character.
    return "ok" if decoded == truth else "wrong"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets-dir", type=Path, default=Path("../shared/datasets"))
    parser.add_argument("--out", type=Path, default=Path("bench-decoding.json"))
    args = parser.parse_args()
    rng = random.Random(SEED)
    rows = samples(args.datasets_dir, rng)
    decoders: dict[str, Callable[[bytes], str | None]] = {"before": old_decode, "now": new_decode}
    counts: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    seconds: dict[str, float] = defaultdict(float)
    for kind, _length, truth, data in rows:
        for name, decode in decoders.items():
            began = time.perf_counter()
            decoded = decode(data)
            seconds[name] += time.perf_counter() - began
            counts[(name, kind)][outcome(decoded, truth, kind)] += 1

    kinds = list(dict.fromkeys(kind for kind, *_ in rows))
    print(f"{'sample':<20}" + "".join(f"{n + ' ok/refused/wrong':>28}" for n in decoders))
    for kind in kinds:
        cells = []
        for name in decoders:
            c = counts[(name, kind)]
            cells.append(f"{c['ok']:>12}/{c['refused']}/{c['wrong']}".rjust(28))
        print(f"{kind:<20}" + "".join(cells))
    for name in decoders:
        print(f"{name}: {seconds[name]:.2f} s for {len(rows)} samples")
    args.out.write_text(
        json.dumps(
            {
                "seed": SEED,
                "samples": len(rows),
                "results": {
                    f"{name}/{kind}": dict(counts[(name, kind)])
                    for name in decoders
                    for kind in kinds
                },
                "seconds": dict(seconds),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
