"""aiterms.grading: the helpers that hidden tests are built from."""
from __future__ import annotations

import pytest
import torch

import aiterms.beam_search as ref
from aiterms import grading
from aiterms.decoding import RandomBigramLM


def cases():
    return [((RandomBigramLM(6, seed=s), [1], 2, 4), {"eos_token_id": 0}) for s in range(3)]


def test_correct_function_passes(capsys):
    # computed before the learner function runs, so the reference itself is free to use here
    expected = {i: ref.beam_search(*a, **kw) for i, (a, kw) in enumerate(cases())}
    answers = iter(expected.values())
    grading.check_cases("beam_search", lambda *a, **k: next(answers), reference=ref.beam_search, cases=cases(),
                        compare=grading.compare_values)
    assert "3 hidden cases passed" in capsys.readouterr().out


def test_calling_the_reference_fails_even_through_an_alias():
    alias = ref.beam_search
    with pytest.raises(grading.ReferenceCalled):
        grading.check_cases("beam_search", lambda *a, **k: alias(*a, **k), reference=ref.beam_search,
                            cases=cases(), compare=grading.compare_values, forbid=[ref.beam_search])
    # and the reference works again afterwards, defaults included
    assert ref.beam_search(RandomBigramLM(6), [1], 2, 3)[0].tokens


def test_wrong_answer_message_names_case_not_answer():
    with pytest.raises(grading.TaskFailed) as info:
        grading.check_cases("f", lambda x: x + 1, reference=lambda x: x, cases=[((1,), {}), ((2,), {})],
                            compare=grading.compare_values)
    assert str(info.value) == "f: hidden case 1 of 2: the result is wrong"
    assert info.value._render_traceback_() == ["TaskFailed: f: hidden case 1 of 2: the result is wrong"]


def test_learner_exception_is_reported_briefly():
    def boom(x):
        raise KeyError("oops")
    with pytest.raises(grading.TaskFailed, match="raised KeyError"):
        grading.check_cases("f", boom, reference=lambda x: x, cases=[((1,), {})], compare=grading.compare_values)


def test_objects_cannot_fake_equality():
    class Liar:
        def __eq__(self, other):
            return True
    assert grading.compare_values(Liar(), [1, 2]) is not None
    assert grading.compare_tokens([Liar()], [1]) is not None


def test_compare_values_structure():
    assert grading.compare_values((torch.tensor([1.0, 2.0]), [3]), [[1.0, 2.0], [3]]) is None
    assert grading.compare_values([1.0, 2.00001], [1.0, 2.0]) is None
    assert "2 items" in grading.compare_values([1.0, 2.0], [1.0, 2.0, 3.0])
    assert grading.compare_values([True], [1]) is not None
    assert grading.compare_values([float("-inf")], [float("-inf")]) is None


def test_compare_tokens():
    assert grading.compare_tokens(torch.tensor([1, 2]), [1, 2]) is None
    assert "position 1" in grading.compare_tokens([1, 3], [1, 2])
    assert "list of token ids" in grading.compare_tokens([1.0], [1])


def test_a_decorated_reference_is_disabled_too():
    """@torch.no_grad() wraps a function (functools.wraps): the innermost one is disabled, then restored."""
    from aiterms import transformer
    with grading.reference_disabled([transformer.generate_batch]):
        with pytest.raises(grading.ReferenceCalled):
            transformer.generate_batch(None, [[1]], 1)
    model = transformer.GPT(transformer.GPTConfig(8, 8, n_layer=1, n_head=1, n_embd=4))
    assert len(transformer.generate_batch(model, [[1, 2]], 3)[0]) == 3


def test_plain_compare_decides_raised_and_unreadable_results_itself():
    calls = []

    @grading.plain_compare("should raise ValueError: k > n", "raised ValueError for a valid k")
    def compare(got, expected, case):
        calls.append((got, expected, case))
        return None if got == expected else "wrong"

    raised = list(grading.RAISED)
    assert compare(raised, raised, {}) is None
    assert compare(["returned", 1], raised, {}) == "should raise ValueError: k > n"
    assert compare(raised, ["returned", 1], {}) == "raised ValueError for a valid k"
    assert compare(object(), ["returned", 1], {}).startswith("could not read the result")
    assert calls == []  # none of those reached the function
    assert compare(("returned", torch.tensor([1.5])), ["returned", [1.5]], {"k": 1}) is None
    assert calls == [(["returned", [1.5]], ["returned", [1.5]], {"k": 1})]  # plain data only
    assert grading.plain_compare(None)(lambda g, e: "compared")(raised, raised) == "compared"
