"""aiterms.tokenizer: the fixed vocabulary, round trips, the SFT layout of (prompt, response) pairs, bad input."""
from __future__ import annotations

import pytest
import torch

from aiterms.tokenizer import CHARACTERS, IGNORE_INDEX, TOKENIZER, CharTokenizer, collate


def test_vocabulary_is_fixed():
    """Checkpoints depend on these ids: changing them is a breaking change."""
    tok = TOKENIZER
    assert (tok.pad_id, tok.bos_id, tok.eos_id, tok.sep_id) == (0, 1, 2, 3)
    assert tok.tokens == ["<pad>", "<bos>", "<eos>", "<sep>", *"0123456789+-=| "]
    assert tok.vocab_size == 19 == 4 + len(CHARACTERS)
    assert tok.encode("0") == [4] and tok.encode("9") == [13] and tok.encode("+-=| ") == [14, 15, 16, 17, 18]


def test_round_trip():
    text = "47+85=7+5+0=12|4+8+1=13|=132 15-7-0=8"
    ids = TOKENIZER.encode(text)
    assert len(ids) == len(text) and TOKENIZER.decode(ids) == text
    assert TOKENIZER.decode(torch.tensor(ids)) == text
    assert TOKENIZER.encode("") == [] and TOKENIZER.decode([]) == ""


def test_decode_special_tokens():
    ids = TOKENIZER.encode_prompt("1+2=") + TOKENIZER.encode("3") + [TOKENIZER.eos_id, TOKENIZER.pad_id]
    assert TOKENIZER.decode(ids) == "1+2=3"
    assert TOKENIZER.decode(ids, skip_special=False) == "<bos>1+2=<sep>3<eos><pad>"


def test_encode_pair_by_hand():
    """The worked example of the module docstring."""
    ids, labels, mask = TOKENIZER.encode_pair("1+2=", "3", max_len=7)
    bos, sep, eos = TOKENIZER.bos_id, TOKENIZER.sep_id, TOKENIZER.eos_id
    one, plus, two, eq, three = TOKENIZER.encode("1+2=3")
    assert ids == [bos, one, plus, two, eq, sep, three]
    assert labels == [-100, -100, -100, -100, -100, three, eos]
    assert mask == [0, 0, 0, 0, 0, 1, 1]


def slow_encode_pair(prompt, response):
    """The definition, written out: full sequence, shift by one, keep the labels of response tokens and <eos>."""
    tok = TOKENIZER
    s = [tok.bos_id] + tok.encode(prompt) + [tok.sep_id] + tok.encode(response) + [tok.eos_id]
    first_response_index = len(prompt) + 2
    ids = s[:-1]
    labels = [s[t + 1] if t + 1 >= first_response_index else -100 for t in range(len(s) - 1)]
    mask = [int(t + 1 >= first_response_index) for t in range(len(s) - 1)]
    return ids, labels, mask


@pytest.mark.parametrize("prompt,response", [("47+85=", "132"), ("47+85=", "7+5+0=12|4+8+1=13|=132"),
                                             ("", "1"), ("9-9=", ""), ("1 + 2 =", " 3")])
def test_encode_pair_matches_definition(prompt, response):
    ids, labels, mask = TOKENIZER.encode_pair(prompt, response, max_len=64)
    assert (ids, labels, mask) == slow_encode_pair(prompt, response)
    assert sum(mask) == len(response) + 1
    assert [l != IGNORE_INDEX for l in labels] == [bool(m) for m in mask]
    assert TOKENIZER.decode([l for l in labels if l != IGNORE_INDEX]) == response


def test_encode_pair_fits_exactly():
    ids, _, _ = TOKENIZER.encode_pair("1+2=", "3", max_len=7)
    assert len(ids) == 7
    with pytest.raises(ValueError, match="response longer than the context"):
        TOKENIZER.encode_pair("1+2=", "3", max_len=6)
    with pytest.raises(ValueError, match="max_len"):
        TOKENIZER.encode_pair("1+2=", "3", max_len=0)


def test_collate_pads_without_teaching_padding():
    a = TOKENIZER.encode_pair("1+2=", "3", 32)
    b = TOKENIZER.encode_pair("10+20=", "30", 32)
    ids, labels, mask = collate([a, b])
    assert ids.shape == labels.shape == mask.shape == (2, 10)
    assert ids.dtype == labels.dtype == torch.long and mask.dtype == torch.float32
    assert ids[0, 7:].tolist() == [TOKENIZER.pad_id] * 3 and labels[0, 7:].tolist() == [-100] * 3
    assert mask[0].tolist() == [0] * 5 + [1, 1] + [0] * 3
    assert ids[1].tolist() == b[0] and labels[1].tolist() == b[1] and mask[1].tolist() == b[2]
    assert torch.equal(mask.bool(), labels != -100)


def test_custom_characters():
    tok = CharTokenizer("ab")
    assert tok.vocab_size == 6 and tok.encode("ba") == [5, 4]


@pytest.mark.parametrize("call,match", [
    (lambda: TOKENIZER.encode("12*3"), r"unknown character '\*' at position 2"),
    (lambda: TOKENIZER.encode("a"), "unknown character 'a'"),
    (lambda: TOKENIZER.encode(12), "text must be a str"),
    (lambda: TOKENIZER.encode_pair("1+2=", "x", 10), "unknown character 'x'"),
    (lambda: TOKENIZER.encode_pair("1*2=", "3", 10), r"unknown character '\*'"),
    (lambda: TOKENIZER.decode([19]), "ids"),
    (lambda: TOKENIZER.decode([-1]), "ids"),
    (lambda: TOKENIZER.decode([1.0]), "ids"),
    (lambda: TOKENIZER.decode(torch.zeros(2, 2, dtype=torch.long)), "ids"),
    (lambda: CharTokenizer("aa"), "characters"),
    (lambda: CharTokenizer(""), "characters"),
    (lambda: collate([]), "examples"),
    (lambda: collate([([1, 2], [3], [0, 1])]), r"examples\[0\]"),
])
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()
