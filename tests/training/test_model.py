"""The packaged ImageNet weights map onto timm's efficientnet_lite0; other weight sources."""
from __future__ import annotations

import pytest
import torch

from data.images import open_image
from training.datasets import normalize_batch, to_uint8_tensor
from training.model import (LITE0_ARCH, WeightsError, build_model, map_state_dict_in_order,
                            normalization)

ELEPHANT_CLASSES = {101, 385, 386}  # tusker, Indian elephant, African elephant


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(2)


def test_packaged_weights_see_the_elephant(serengeti_images):
    model = build_model(LITE0_ARCH, 1000, weights="auto").eval()
    mean, std = normalization(LITE0_ARCH, "auto")
    path = serengeti_images / "S1/D04/D04_R6/S1_D04_R6_PICT0020.JPG"
    x = normalize_batch(to_uint8_tensor(open_image(path, size=224), 224)[None], mean, std,
                        device=torch.device("cpu"), channels_last=False)
    with torch.inference_mode():
        top5 = model(x).softmax(1).topk(5).indices[0].tolist()
    assert ELEPHANT_CLASSES & set(top5), f"top-5 ImageNet classes {top5}"


def test_mapping_refuses_a_shape_mismatch():
    source = {"_a.weight": torch.zeros(3, 3), "_b.weight": torch.zeros(4)}
    target = {"a.weight": torch.zeros(3, 3), "b.weight": torch.zeros(5)}
    with pytest.raises(WeightsError, match=r"tensor #1 _b.weight has shape \(4,\).*b.weight"):
        map_state_dict_in_order(source, target, origin="w.pth")


def test_mapping_refuses_a_count_mismatch():
    with pytest.raises(WeightsError, match="w.pth: 1 tensors, but the model has 2"):
        map_state_dict_in_order({"a": torch.zeros(1)}, {"a": torch.zeros(1), "b": torch.zeros(1)},
                                origin="w.pth")


def test_new_head_is_zero_and_backbone_is_pretrained():
    model = build_model(LITE0_ARCH, 7)
    assert model.get_classifier().out_features == 7
    assert not model.get_classifier().weight.any()
    ref = build_model(LITE0_ARCH, 1000).state_dict()
    assert torch.equal(model.state_dict()["blocks.3.0.conv_pw.weight"],
                       ref["blocks.3.0.conv_pw.weight"])


def test_auto_weights_only_for_lite0():
    with pytest.raises(WeightsError, match="--weights auto: offline weights exist only for"):
        build_model("resnet18", 5, weights="auto")


def test_local_weights_file(tmp_path):
    torch.manual_seed(1)
    src = build_model("resnet18", 3, weights="none")
    path = tmp_path / "r18.pt"
    torch.save(src.state_dict(), path)
    same = build_model("resnet18", 3, weights=str(path))
    assert torch.equal(same.fc.weight, src.fc.weight)
    other = build_model("resnet18", 5, weights=str(path))  # new head, same backbone
    assert torch.equal(other.conv1.weight, src.conv1.weight)
    assert other.fc.out_features == 5 and not other.fc.weight.any()


@pytest.mark.parametrize("arch, weights, match", [
    ("resnet18", "missing.pt", "--weights missing.pt: no such file"),
    ("no_such_net", "none", "--arch no_such_net: not a timm model name"),
])
def test_bad_weights_arguments(arch, weights, match):
    with pytest.raises(WeightsError, match=match):
        build_model(arch, 3, weights=weights)


def test_foreign_file_refused(tmp_path):
    torch.save(build_model("resnet18", 3, weights="none").state_dict(), tmp_path / "r18.pt")
    with pytest.raises(WeightsError, match="names do not fit"):
        build_model(LITE0_ARCH, 3, weights=str(tmp_path / "r18.pt"))
