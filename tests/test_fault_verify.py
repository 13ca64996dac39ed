"""Resume does not trust the ledger blindly; verify names damaged chunks (issue 9)."""

from __future__ import annotations

from faults import *  # noqa: F403 - the fixtures
from faults import chunk_files, chunk_names, run_args, run_cli


def test_damaged_chunks_are_named_by_verify_and_recomputed_by_resume(volume, tmp_path):
    out = tmp_path / "out.zarr"
    first = run_cli(*run_args(volume.path, out))
    assert first.code == 0, str(first)

    files = chunk_files(out)
    truncated, flipped = files[len(files) // 3], files[2 * len(files) // 3]
    truncated.write_bytes(truncated.read_bytes()[: truncated.stat().st_size // 2])
    data = bytearray(flipped.read_bytes())
    for i in range(len(data) // 2, min(len(data), len(data) // 2 + 16)):
        data[i] ^= 0xFF
    flipped.write_bytes(bytes(data))
    stale = files[0].with_name(f"{files[0].name}.0123456789abcdef.partial")
    stale.write_bytes(b"half a chunk")

    verify = run_cli("verify", out)
    assert verify.code == 1, str(verify)
    report = verify.out + verify.err
    assert "Traceback" not in report, str(verify)
    for bad in (truncated, flipped):
        assert any(name in report for name in chunk_names(bad, out)), (
            f"{bad} not named\n{verify}"
        )

    resumed = run_cli(*run_args(volume.path, out, "--resume"))
    assert resumed.code == 0, str(resumed)
    volume.check(out)
    assert not stale.exists(), "resume leaves stale .partial files behind"

    verify = run_cli("verify", out)
    assert verify.code == 0, str(verify)
