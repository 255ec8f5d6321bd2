import random

from meadow.build.sample import Sample, content_key, rank, sample_ids


def test_rank_depends_on_seed_and_key():
    assert rank(1, "a") == rank(1, "a")
    assert rank(1, "a") != rank(2, "a")
    assert rank(1, "a") != rank(1, "b")


def test_sample_is_order_independent():
    ids = [f"src:{i}" for i in range(5000)]
    shuffled = ids[:]
    random.Random(0).shuffle(shuffled)
    assert sample_ids(7, ids, 100) == sample_ids(7, shuffled, 100)


def test_sample_keeps_exactly_the_lowest_ranks():
    ids = [f"src:{i}" for i in range(2000)]
    expected = sorted(ids, key=lambda i: rank(3, i))[:50]
    assert sample_ids(3, ids, 50) == expected
    assert sample_ids(3, ids, None) == sorted(ids, key=lambda i: rank(3, i))


def test_adding_rows_only_admits_rows_that_outrank_old_ones():
    old = [f"src:{i}" for i in range(3000)]
    new = old + [f"src:new{i}" for i in range(300)]
    before, after = set(sample_ids(5, old, 200)), set(sample_ids(5, new, 200))
    entered = after - before
    assert entered and all(i.startswith("src:new") for i in entered)
    assert len(before - after) == len(entered)


def items_with_repeats(seed: int) -> list[tuple[int, str, int, str]]:
    """300 ids over 100 distinct contents: (rank, id, content key, item)."""
    return [(rank(seed, f"s:{i}"), f"s:{i}", content_key(str(i % 100)), f"s:{i}") for i in range(300)]


def run(items, n, taken=None):
    s: Sample[str] = Sample(n, taken)
    outcomes = [s.offer(*it) for it in items]
    return s.items(), outcomes


def test_exact_repeats_keep_the_lowest_rank_whatever_the_order():
    items = items_with_repeats(1)
    expected = {}
    for r, i, k, _ in items:
        if k not in expected or (r, i) < expected[k]:
            expected[k] = (r, i)
    best = sorted(expected.values())
    for order in range(5):
        shuffled = items[:]
        random.Random(order).shuffle(shuffled)
        kept, outcomes = run(shuffled, None)
        assert kept == [i for _, i in best]
        assert outcomes.count("duplicate") == 200
        kept, _ = run(shuffled, 30)
        assert kept == [i for _, i in best[:30]]


def test_taken_content_and_repeated_ids():
    items = items_with_repeats(2)[:100]
    taken = {items[0][2]: "earlier"}
    kept, outcomes = run(items + [items[5]], None, taken)
    assert outcomes[0] == "duplicate" and items[0][1] not in kept
    assert outcomes[-1] == "duplicate_id"
    assert len(kept) == 99


def test_items_are_never_compared():
    s: Sample[object] = Sample(2)
    for i in range(10):
        s.offer(1, f"id{i}", None, object())  # equal ranks, unorderable items
    assert len(s.items()) == 2


def test_content_key():
    assert content_key("a", "b") == content_key("a", "b")
    assert content_key("a", "b") != content_key("ab", "")
