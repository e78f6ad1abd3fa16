"""The weights' shared-memory protocol: what the writer publishes, the reader copies whole, or not at all."""

import threading
import time

import numpy as np
import pytest

from rnn_tui import shm

LAYOUT = [("a", (3, 4)), ("b", (5,))]


def arrays(value: float) -> list[np.ndarray]:
    return [np.full(shape, value, np.float32) for _, shape in LAYOUT]


@pytest.fixture
def writer():
    w = shm.Writer(LAYOUT)
    yield w
    w.close()


def test_a_version_goes_across_once(writer):
    reader = shm.Reader(writer.name, LAYOUT)
    try:
        assert reader.read() is None  # nothing published yet
        writer.write(arrays(1.5), step=7)
        version, step, got = reader.read()
        assert step == 7 and version == 2
        assert {k: v.shape for k, v in got.items()} == dict(LAYOUT)
        assert all((v == 1.5).all() for v in got.values())
        assert reader.read() is None  # the same version is not copied again
        writer.write((a.astype(np.float64) for a in arrays(2.0)), step=8)  # converted as it is copied
        version, step, got = reader.read()
        assert (version, step) == (4, 8) and got["b"].dtype == np.float32 and (got["b"] == 2.0).all()
    finally:
        reader.close()


def test_a_version_being_written_or_changed_while_copied_is_not_taken(writer):
    writer.write(arrays(1.0), step=1)
    reader = shm.Reader(writer.name, LAYOUT)
    try:
        header = np.ndarray((shm.HEADER,), dtype=np.int64, buffer=reader._shm.buf)
        header[shm.COUNTER] += 1  # odd: a writer is in the middle of it
        assert reader.read() is None
        header[shm.COUNTER] += 1

        class Moving:
            """A header whose counter moves on between the reader's two looks: a write during the copy."""

            def __init__(self) -> None:
                self.looks = 0

            def __getitem__(self, i: int) -> int:
                if i == shm.STEP:
                    return 1
                self.looks += 1
                return 4 if self.looks == 1 else 6

        reader._header = Moving()
        assert reader.read() is None and reader.seen == 0  # torn: dropped, and the next version is still wanted
    finally:
        reader.close()


def test_a_reader_never_sees_half_of_two_versions(writer):
    stop = threading.Event()

    def write() -> None:
        k = 0
        while not stop.is_set():
            k += 1
            writer.write(arrays(float(k)), step=k)
            time.sleep(0)  # let the reader in between two writes, as the trainer's steps do

    thread = threading.Thread(target=write)
    thread.start()
    reader = shm.Reader(writer.name, LAYOUT)
    seen, deadline = 0, time.monotonic() + 20
    try:
        while seen < 50 and time.monotonic() < deadline:  # a torn copy would be taken among them
            got = reader.read()
            if got is None:
                continue
            _, step, tensors = got
            seen += 1
            assert all((v == step).all() for v in tensors.values()), "a torn copy was taken"
    finally:
        stop.set()
        thread.join()
        reader.close()
    assert seen


def test_the_writer_owns_the_segment(writer):
    with pytest.raises(ValueError, match="shape"):
        writer.write([np.zeros((4, 3), np.float32), np.zeros(5, np.float32)], step=0)
    name = writer.name
    writer.close()
    with pytest.raises(FileNotFoundError):
        shm.Reader(name, LAYOUT)  # gone once its writer closed it
    assert shm.nbytes(LAYOUT) == shm.HEADER * 8 + 4 * 17
