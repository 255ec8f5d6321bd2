import random

from meadow.sample import BottomN, content_key, rank, sample_ids


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


def test_adding_rows_only_admits_rows_that_outrank_old_ones():
    old = [f"src:{i}" for i in range(3000)]
    new = old + [f"src:new{i}" for i in range(300)]
    before, after = set(sample_ids(5, old, 200)), set(sample_ids(5, new, 200))
    entered = after - before
    assert entered and all(i.startswith("src:new") for i in entered)
    assert len(before - after) == len(entered)


def test_bottom_n_all_keeps_everything_and_ties_never_compare_items():
    keep = BottomN(None)
    for _i in range(10):
        keep.offer(1, "same", object())  # objects are not orderable
    assert len(keep.items()) == 10
    small = BottomN(2)
    for _i in range(5):
        small.offer(1, "same", object())
    assert len(small) == 2


def test_content_key():
    assert content_key("a", "b") == content_key("a", "b")
    assert content_key("a", "b") != content_key("ab", "")
