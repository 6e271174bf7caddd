"""The KV-cache decoder must give the model's own logits, position by position."""

import pytest
import torch
from helpers import SMALL_CONFIGS, randomised

from tinyllm.decoder import CachedDecoder


@pytest.mark.parametrize("config", SMALL_CONFIGS)
@pytest.mark.parametrize("first", [1, 5])  # a prompt of `first` characters, then one at a time
def test_decoder_gives_the_readable_models_logits(config, first):
    model = randomised(config, first).eval()
    ids = torch.randint(config.vocab_size, (config.block_size,), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        expected = model.set_fast(False)(ids[None])[0][0]  # (T, vocab), the readable Heads

    decoder = CachedDecoder(model)
    got = [decoder.feed(ids[:first].tolist())]
    got += [decoder.feed([i]) for i in ids[first:].tolist()]
    got = torch.stack(got)  # logits after position first-1, first, ..., block_size-1
    assert expected.abs().max() > 0.5  # not a trivially small comparison
    torch.testing.assert_close(got, expected[first - 1 :], atol=1e-5, rtol=0)
    assert decoder.length == config.block_size


def test_reset_reads_again_from_position_zero():
    config = SMALL_CONFIGS[1]
    model = randomised(config, 0).eval()
    decoder = CachedDecoder(model)
    first = decoder.feed([1, 2, 3])
    decoder.feed([4, 5])
    decoder.reset()
    again = decoder.feed([1, 2, 3])
    torch.testing.assert_close(again, first, atol=0, rtol=0)
    # the same characters at other positions give other logits
    assert not torch.allclose(decoder.feed([1, 2, 3]), first)


def test_decoder_refuses_to_read_past_the_window():
    config = SMALL_CONFIGS[0]
    decoder = CachedDecoder(randomised(config, 0).eval())
    decoder.feed([1] * (config.block_size - 1))
    with pytest.raises(ValueError, match="1 to 1 more"):
        decoder.feed([1, 2])
    with pytest.raises(ValueError):
        decoder.feed([])
    decoder.feed([1])  # exactly full is fine
