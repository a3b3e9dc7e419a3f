"""A missing, corrupt or inconsistent model folder stops start-up with one clear line."""

import json
import shutil
import subprocess
import sys
import warnings

import numpy as np
import onnx
import onnxruntime
import pytest
from onnx import numpy_helper

from contract.description import sha256_of
from service.core.errors import ModelError
from service.core.verified import VerifiedModel
from tests.model_folders import relisted, rewritten


@pytest.fixture
def model_copy(tmp_path, model_dir):
    return shutil.copytree(model_dir, tmp_path / "model")


def test_loads_and_answers(model_dir):
    model = VerifiedModel.load(model_dir, threads=1)
    model.warm_up()
    assert model.latent_size == 2


def test_loading_warns_of_nothing(model_dir):
    """onnxruntime warns, and carries on, when asked for a provider it does not know."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        VerifiedModel.load(model_dir, threads=1)


def test_a_listed_file_onnxruntime_cannot_load_is_named_with_its_error(model_copy):
    encoder = model_copy / "encoder.onnx"
    encoder.write_bytes(b"not a graph")
    relisted(model_copy, "encoder", encoder)
    with pytest.raises(ModelError, match=rf"^{encoder}: onnxruntime cannot load it \(.*INVALID_PROTOBUF"):
        VerifiedModel.load(model_copy, threads=1)


def test_a_tampered_reference_set_is_refused(model_copy):
    with (model_copy / "reference.bin").open("ab") as file:
        file.write(b"\0")
    with pytest.raises(ModelError, match="reference.bin: sha256 .* does not match"):
        VerifiedModel.load(model_copy, threads=1)


def test_an_unreadable_description_says_why(tmp_path):
    (tmp_path / "model.json").mkdir()
    with pytest.raises(ModelError) as refused:
        VerifiedModel.load(tmp_path, threads=1)
    assert str(refused.value) == f"{tmp_path / 'model.json'}: cannot read (Is a directory)"


def test_an_encoder_that_takes_another_shape_is_named_with_the_shape_it_takes(model_copy):
    encoder = onnx.load(model_copy / "encoder.onnx")
    encoder.graph.input[0].type.tensor_type.shape.dim[-1].dim_value = 32
    rewritten(model_copy, "encoder", encoder)
    with pytest.raises(ModelError) as refused:
        VerifiedModel.load(model_copy, threads=1)
    assert str(refused.value) == f"{model_copy}: encoder input ['N', 1, 28, 32] is not [N, 1, 28, 28]"


def test_an_encoder_whose_mu_and_sigma_differ_in_size_is_named_with_each(model_copy):
    """The encoder's last layer (2K = 4 wide) split 3 and 1 instead of 2 and 2."""
    encoder = onnx.load(model_copy / "encoder.onnx")
    split = next(node for node in encoder.graph.node if node.op_type == "Split")
    del split.attribute[:]
    split.attribute.append(onnx.helper.make_attribute("axis", 1))
    encoder.graph.initializer.append(numpy_helper.from_array(np.array([3, 1], np.int64), "sizes_3_1"))
    split.input.append("sizes_3_1")
    del encoder.graph.value_info[:]  # the shapes onnxruntime infers, not those the exporter wrote
    for output in encoder.graph.output:
        output.type.tensor_type.shape.dim[-1].dim_param = "K"
    rewritten(model_copy, "encoder", encoder)
    sizes = "{'model.json latent_size': 2, 'encoder mu': 3, 'encoder sigma': 1, 'decoder z': 2}"
    with pytest.raises(ModelError) as refused:
        VerifiedModel.load(model_copy, threads=1)
    assert str(refused.value) == f"{model_copy}: latent sizes disagree: {sizes}"


def test_a_reference_set_of_the_wrong_size_says_how_many_bytes_it_has_and_should(model_copy):
    reference = model_copy / "reference.bin"
    expected = reference.stat().st_size
    reference.write_bytes(reference.read_bytes()[:-17])
    relisted(model_copy, "reference", reference)
    with pytest.raises(ModelError) as refused:
        VerifiedModel.load(model_copy, threads=1)
    assert str(refused.value) == f"{reference}: {expected - 17} bytes, not {expected}"


def test_missing_description(tmp_path):
    with pytest.raises(ModelError, match="model.json: missing"):
        VerifiedModel.load(tmp_path, threads=1)


def test_tampered_file(model_copy):
    with (model_copy / "decoder.onnx").open("ab") as file:
        file.write(b"\0")
    digest = sha256_of(model_copy / "decoder.onnx")
    with pytest.raises(ModelError) as refused:
        VerifiedModel.load(model_copy, threads=1)
    expected = f"{model_copy / 'decoder.onnx'}: sha256 {digest[:12]}... does not match model.json; the file was changed"
    assert str(refused.value) == expected


def test_missing_file(model_copy):
    (model_copy / "encoder.onnx").unlink()
    with pytest.raises(ModelError, match="encoder.onnx: cannot read"):
        VerifiedModel.load(model_copy, threads=1)


def test_inconsistent_latent_size(model_copy):
    description = json.loads((model_copy / "model.json").read_text())
    description["latent_size"] = 3
    (model_copy / "model.json").write_text(json.dumps(description))
    sizes = "{'model.json latent_size': 3, 'encoder mu': 2, 'encoder sigma': 2, 'decoder z': 2}"
    with pytest.raises(ModelError) as refused:
        VerifiedModel.load(model_copy, threads=1)
    assert str(refused.value) == f"{model_copy}: latent sizes disagree: {sizes}"


def test_corrupt_description(model_copy):
    (model_copy / "model.json").write_text("{not json")
    with pytest.raises(ModelError, match="not a valid model description"):
        VerifiedModel.load(model_copy, threads=1)


def test_serve_command_exits_with_one_line(model_copy):
    (model_copy / "encoder.onnx").write_bytes(b"tampered")
    result = subprocess.run(
        [sys.executable, "-m", "service", "--model-dir", str(model_copy), "--port", "1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert result.stderr.strip().count("\n") == 0
    assert "encoder.onnx: sha256" in result.stderr


def test_an_unknown_format_version_is_named(model_copy):
    path = model_copy / "model.json"
    description = json.loads(path.read_text())
    description["format_version"] = 99
    path.write_text(json.dumps(description))
    with pytest.raises(ModelError, match="not a valid model description: field 'format_version': Input should be 2"):
        VerifiedModel.load(model_copy, threads=1)


def test_a_missing_field_is_named(model_copy):
    path = model_copy / "model.json"
    description = json.loads(path.read_text())
    del description["novelty"]["test_quantiles"]
    path.write_text(json.dumps(description))
    with pytest.raises(ModelError, match="field 'novelty.test_quantiles': Field required"):
        VerifiedModel.load(model_copy, threads=1)


def test_a_decoder_that_answers_nan_is_refused_by_the_warm_up(model_copy):
    """Readiness means the model answers: weights gone NaN (a diverged run exported) load and verify,
    then fail the warm-up's call through both graphs."""
    path = model_copy / "decoder.onnx"
    decoder = onnx.load(path)
    weights = max(decoder.graph.initializer, key=lambda tensor: len(tensor.dims))
    weights.CopyFrom(numpy_helper.from_array(np.full_like(numpy_helper.to_array(weights), np.nan), weights.name))
    rewritten(model_copy, "decoder", decoder)
    model = VerifiedModel.load(model_copy, threads=1)
    with pytest.raises(ModelError, match="^warm-up produced non-finite output$"):
        model.warm_up()


def test_the_sessions_use_the_threads_they_are_given_not_the_hosts_cores(model_dir):
    model = VerifiedModel.load(model_dir, threads=3)
    for session in (model.encoder, model.decoder):
        options = session.get_session_options()
        assert (options.intra_op_num_threads, options.inter_op_num_threads) == (3, 1)
        assert options.execution_mode == onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        assert options.graph_optimization_level == onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
