"""The connectors' memory: which entries of a source were already published."""

from pathlib import Path

from connectors.seen_store import SeenStore


def test_unseen_keeps_order_drops_repeats_and_handles_more_keys_than_sqlite_binds(tmp_path: Path) -> None:
    store = SeenStore(tmp_path / "state.sqlite3")
    try:
        seen = [f"https://example.test/{i}" for i in range(0, 3000, 2)]
        store.mark_seen("feed-a", seen)
        store.mark_seen("feed-b", ["https://example.test/1"])
        keys = [f"https://example.test/{i}" for i in range(3000)] + ["https://example.test/1"]
        unseen = store.unseen("feed-a", keys)
        assert unseen == [f"https://example.test/{i}" for i in range(1, 3000, 2)]  # another source's marks do not count
        assert store.unseen("feed-a", []) == []
    finally:
        store.close()
