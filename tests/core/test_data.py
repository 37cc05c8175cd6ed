"""Datasets: digits split, image folders, tensor files, random inputs, calibration subsets."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from paretolab.core.errors import InputShapeError
from paretolab.core.measure.data import (
    DataError,
    calibration_subset,
    digits,
    fit_to_model,
    open_dataset,
    random_inputs,
    tensor_file,
)
from paretolab.core.measure.images import ImagePreprocess, image_folder
from paretolab.core.model.handle import load_model
from paretolab.core.sample import sample_model_path
from paretolab.core.tensors import TensorSpec, with_batch_axes

IMAGE_INPUT = [TensorSpec("input", ("batch", 3, 16, 16), "float32")]


def make_images(folder, classes=("cat", "dog"), per_class=3, size=(40, 30)):
    rng = np.random.default_rng(0)
    for c in classes:
        (folder / c).mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / c / f"{i}.png")
    return folder


def test_digits_splits_are_fixed_and_batched():
    test = digits("test")
    assert len(test) == 360 and test.has_labels
    batches = list(test.batches(100))
    assert [len(b.indices) for b in batches] == [100, 100, 100, 60]
    assert batches[0].inputs[0].shape == (100, 1, 8, 8) and batches[0].inputs[0].dtype == np.float32
    np.testing.assert_array_equal(np.concatenate([b.labels for b in batches]), test.labels)
    assert batches[0].inputs[0].min() >= 0.0 and batches[0].inputs[0].max() <= 1.0


def test_image_folder_with_classes_resizes_crops_and_normalises(tmp_path):
    ds = open_dataset(str(make_images(tmp_path / "imgs")), IMAGE_INPUT)
    assert len(ds) == 6 and ds.classes == ["cat", "dog"]
    np.testing.assert_array_equal(ds.labels, [0, 0, 0, 1, 1, 1])
    (batch,) = ds.load(np.arange(6))
    assert batch.shape == (6, 3, 16, 16) and batch.dtype == np.float32
    assert batch.mean() == pytest.approx(0.0, abs=0.6)  # ImageNet mean/std roughly centre noise


def test_image_preprocess_layouts_and_channels(tmp_path):
    make_images(tmp_path / "imgs")
    path = next((tmp_path / "imgs" / "cat").iterdir())
    nhwc_gray = ImagePreprocess(size=8, channels="L", layout="NHWC").apply(path)
    assert nhwc_gray.shape == (8, 8, 1)
    rgb = ImagePreprocess(size=8).apply(path)
    bgr = ImagePreprocess(size=8, channels="BGR", mean=(0.5, 0.5, 0.5), std=(1, 1, 1)).apply(path)
    rgb_plain = ImagePreprocess(size=8, mean=(0.5, 0.5, 0.5), std=(1, 1, 1)).apply(path)
    assert rgb.shape == (3, 8, 8)
    np.testing.assert_allclose(bgr, rgb_plain[::-1])
    spec = TensorSpec("x", (1, 32, 32, 3), "float32")
    assert ImagePreprocess.for_input(spec) == ImagePreprocess(size=32, layout="NHWC", channels="RGB")


def test_a_preprocessing_recipe_is_read_from_text_and_written_back():
    spec = TensorSpec("x", ("batch", 64, 64, 3), "float32")
    recipe = ImagePreprocess.parse("channels=bgr, mean=0/0/0,std=1/1/1,scale=1", spec)
    assert recipe == ImagePreprocess(size=64, layout="NHWC", channels="BGR", mean=(0, 0, 0), std=(1, 1, 1), scale=1)
    assert ImagePreprocess.parse(recipe.text()) == recipe  # what the user is shown pastes back
    with pytest.raises(DataError, match="preprocessing 'colour=BGR': unknown setting 'colour'; use size, resize"):
        ImagePreprocess.parse("colour=BGR")
    with pytest.raises(DataError, match="preprocessing 'layout=CHW': use NCHW or NHWC"):
        ImagePreprocess.parse("layout=CHW")


def test_an_image_folder_feeds_a_bgr_nhwc_model_raw_pixels_as_its_recipe_says(tmp_path):
    from paretolab.core.measure.plan import DataPlan

    class Handle:  # what DataPlan reads of a model: its inputs
        inputs = [TensorSpec("x", ("batch", 16, 16, 3), "float32")]

    folder = tmp_path / "imgs"
    folder.mkdir()
    pixels = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(folder / "a.png")
    plan = DataPlan.from_spec(str(folder), Handle(), "channels=BGR,resize=16,mean=0/0/0,std=1/1/1,scale=1")
    (batch,) = plan.test.load(np.arange(1))
    np.testing.assert_array_equal(batch[0], pixels[:, :, ::-1].astype(np.float32))
    assert any("images preprocessed as size=16,resize=16,mean=0/0/0,std=1/1/1,channels=BGR,layout=NHWC,scale=1" in note
               for note in plan.notes)


def test_flat_image_folder_is_unlabelled(tmp_path):
    folder = tmp_path / "flat"
    folder.mkdir()
    for i in range(3):
        Image.fromarray(np.zeros((10, 10, 3), np.uint8)).save(folder / f"{i}.jpg")
    ds = image_folder(folder, ImagePreprocess(size=8))
    assert len(ds) == 3 and not ds.has_labels


def test_tensor_files_with_and_without_labels(tmp_path):
    x = np.random.default_rng(0).random((5, 1, 8, 8), dtype=np.float32)
    np.savez(tmp_path / "d.npz", x=x, y=np.arange(5))
    ds = tensor_file(tmp_path / "d.npz", ["input"])
    assert len(ds) == 5 and ds.labels.tolist() == [0, 1, 2, 3, 4]
    np.save(tmp_path / "d.npy", x)
    unlabelled = tensor_file(tmp_path / "d.npy")
    assert not unlabelled.has_labels and unlabelled.load(np.arange(2))[0].shape == (2, 1, 8, 8)
    np.savez(tmp_path / "multi.npz", ids=np.zeros((4, 7), np.int64), mask=np.ones((4, 7), np.int64))
    multi = tensor_file(tmp_path / "multi.npz", ["ids", "mask"])
    assert [a.shape for a in multi.load(np.arange(4))] == [(4, 7), (4, 7)]


# A voice-activity model: samples, a GRU state laid out [layers, batch, hidden], a sample-rate scalar.
AUDIO_INPUTS = [TensorSpec("x", ("batch", 64), "float32"), TensorSpec("state", (2, "batch", 32), "float32"),
                TensorSpec("sr", (), "int64")]


@pytest.mark.parametrize(("shapes", "axes"), [
    ([("batch", 64), (2, "batch", 32), ()], [0, 1, None]),  # named batch axes
    ([(1, 64), (2, 1, 32), ()], [0, 1, None]),  # exported at batch 1: the state's batch is its size-1 axis
    ([(-1, 64), (2, None, 32)], [0, 1]),  # unnamed, as other frameworks write them
    ([(4, 1, 8, 8)], [0]),  # a fixed batch of 4
    ([("batch", "seq"), ("batch", "seq")], [0, 0]),  # token ids and their mask
    ([("batch", 64), (2, "other", 32)], [0, None]),  # not the batch: one value per call
])
def test_batch_axes_come_from_the_declared_shapes(shapes, axes):
    specs = [TensorSpec(f"in{i}", shape, "float32") for i, shape in enumerate(shapes)]
    assert [s.batch_axis for s in with_batch_axes(specs)] == axes


def test_random_inputs_batch_each_input_along_its_own_axis():
    specs = with_batch_axes([TensorSpec(s.name, (4, 64) if s.name == "x" else s.shape, s.dtype) for s in AUDIO_INPUTS],
                            declared=AUDIO_INPUTS)
    x, state, sr = random_inputs(specs, count=8).load(np.arange(4))
    assert x.shape == (4, 64) and state.shape == (2, 4, 32) and sr.shape == () and sr.dtype == np.int64
    assert not state.any() and x.std() > 0.5  # a recurrent state starts at zeros
    assert [a.shape for a in random_inputs(specs, count=8).load(np.arange(1))] == [(1, 64), (2, 1, 32), ()]


def test_tensor_files_map_arrays_to_inputs_by_name(tmp_path):
    specs = with_batch_axes(AUDIO_INPUTS)
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "audio.npz", sr=np.array(16000), x=rng.random((6, 64), dtype=np.float32),
             state=np.zeros((6, 2, 32), np.float32))
    x, state, sr = tensor_file(tmp_path / "audio.npz", specs).load(np.arange(3))
    assert x.shape == (3, 64) and state.shape == (2, 3, 32) and int(sr) == 16000  # a scalar given once serves all
    fit_to_model(tensor_file(tmp_path / "audio.npz", specs), specs, "vad.onnx")
    np.savez(tmp_path / "partial.npz", x=rng.random((6, 64), dtype=np.float32))
    with pytest.raises(DataError, match="partial.npz has no array named 'state' for that input of the model"):
        tensor_file(tmp_path / "partial.npz", specs)


def test_random_inputs_follow_the_model_and_need_fixed_sizes():
    ds = random_inputs(IMAGE_INPUT, count=4, seed=1)
    assert ds.load(np.arange(4))[0].shape == (4, 3, 16, 16) and not ds.has_labels
    np.testing.assert_array_equal(ds.load(np.arange(4))[0], random_inputs(IMAGE_INPUT, 4, seed=1).load(np.arange(4))[0])
    with pytest.raises(InputShapeError, match=r"input 'input' is \[batch, 3, h, w\]"):
        random_inputs([TensorSpec("input", ("batch", 3, "h", "w"), "float32")])


def test_calibration_subset_is_reproducible_and_bounded():
    test = digits("test")
    a, b = calibration_subset(test, 50, seed=3), calibration_subset(test, 50, seed=3)
    assert len(a) == 50
    np.testing.assert_array_equal(a.load(np.arange(50))[0], b.load(np.arange(50))[0])
    np.testing.assert_array_equal(a.labels, b.labels)
    other = calibration_subset(test, 50, seed=4)
    assert not np.array_equal(other.load(np.arange(50))[0], a.load(np.arange(50))[0])
    assert len(calibration_subset(test, 10_000)) == 360


def test_empty_folder_and_single_class_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="empty has no images"):
        open_dataset(str(tmp_path / "empty"))
    make_images(tmp_path / "one", classes=("cat",))
    with pytest.raises(DataError, match="only one class folder \\('cat'\\)"):
        open_dataset(str(tmp_path / "one"))


def test_data_that_does_not_fit_names_both_shapes():
    with pytest.raises(DataError) as exc:
        fit_to_model(digits("test"), IMAGE_INPUT, "net.onnx")
    assert "digits:test has samples of shape [1, 8, 8]" in str(exc.value)
    assert "input 'input' of net.onnx takes [3, 16, 16] per sample" in str(exc.value)
    ints = [TensorSpec("ids", ("batch", 1, 8, 8), "int64")]
    with pytest.raises(DataError, match="holds float32 data, but input 'ids' of m takes int64"):
        fit_to_model(digits("test"), ints, "m")


def test_unknown_data_spec(tmp_path):
    with pytest.raises(DataError, match="no such file or folder"):
        open_dataset(str(tmp_path / "missing"))
    (tmp_path / "d.csv").write_text("1,2")
    with pytest.raises(DataError, match="unknown data format '.csv'"):
        open_dataset(str(tmp_path / "d.csv"))
    with pytest.raises(DataError, match="not 'holdout'"):
        open_dataset("digits:holdout")


def test_shipped_split_file_works_as_data_and_matches_digits(tmp_path):
    from paretolab.core.sample import sample_dir

    shipped = sample_dir() / "digits_split.npz"
    for spec, split in ((str(shipped), "test"), (f"{shipped}:val", "val")):
        data = open_dataset(spec, load_model(sample_model_path()).inputs)
        expected = digits(split)
        np.testing.assert_array_equal(data.load(np.arange(len(data)))[0], expected.arrays[0])  # scaled to 0..1
        np.testing.assert_array_equal(data.labels, expected.labels)
    copy = tmp_path / "digits_split.npz"
    copy.write_bytes(shipped.read_bytes())
    assert open_dataset(f"{copy}:train").labels.shape == (1078,)


def test_any_split_file_picks_a_split_and_names_the_ones_it_has(tmp_path):
    path = tmp_path / "mine.npz"
    np.savez(path, train_images=np.zeros((4, 3), np.float32), train_labels=np.arange(4),
             val_images=np.ones((2, 3), np.float32), val_labels=np.arange(2))
    assert len(open_dataset(str(path))) == 4  # no test split: the first one
    val = open_dataset(f"{path}:val")
    assert len(val) == 2 and val.load(np.arange(2))[0].min() == 1.0
    with pytest.raises(DataError, match="has the splits train, val, not 'test'"):
        open_dataset(f"{path}:test")


def test_random_inputs_refuse_a_shape_that_cannot_fit_in_memory():
    huge = [TensorSpec("x", (1, 3, 200000, 200000), "float32")]
    with pytest.raises(InputShapeError, match=r"input 'x' is \[1, 3, 200000, 200000\]: 8 random samples would take .* GiB"):
        random_inputs(huge, count=8)


@pytest.mark.parametrize("saved", [
    {"texts": np.array([{"a": 1}, "two"], dtype=object)},  # a list of dicts and strings: pickled objects
    {"meta": np.array({"label": "cat"}, dtype=object), "x": np.zeros((2, 4), np.float32)},  # a dict beside numbers
    {"x": np.array(["good movie", "bad movie"])},  # plain strings: no pickle, still not numbers
])
def test_tensor_files_of_objects_or_strings_are_refused_in_one_line_naming_the_array(tmp_path, saved):
    np.savez(tmp_path / "texts.npz", **saved)
    with pytest.raises(DataError) as caught:
        tensor_file(tmp_path / "texts.npz", ["x"])
    message = str(caught.value)
    assert "texts.npz" in message and "\n" not in message
    bad = next(k for k, v in saved.items() if v.dtype.kind in "OU")
    assert repr(bad) in message
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match="objects.npy.*Python objects"):
        open_dataset(str(tmp_path / "objects.npy"), [TensorSpec("x", ("batch", 4), "float32")])


def test_an_object_npz_through_the_cli_is_a_user_error(tmp_path, capsys):
    from paretolab.cli import main

    np.savez(tmp_path / "texts.npz", texts=np.array(["a", {"b": 1}], dtype=object))
    code = main(["evaluate", str(sample_model_path()), "--data", str(tmp_path / "texts.npz")])
    err = capsys.readouterr().err
    assert code == 2 and "internal error" not in err and "'texts'" in err and "texts.npz" in err
