"""Known-answer tests of the chapter helpers in emoser.notebook."""
import numpy as np

from emoser.course import colab_setup_cell, glue


def test_glue_returns_plain_python_numbers_for_numpy_scalars():
    value = glue("test_value", np.float64(1.25))
    assert type(value) is float and value == 1.25
    assert type(glue("test_count", np.int64(3))) is int


def test_colab_setup_cell_installs_from_the_given_url_only_in_colab():
    cell = colab_setup_cell("https://example.org/x/emoser")
    assert 'url = "git+https://example.org/x/emoser"' in cell
    assert 'if "google.colab" in sys.modules:' in cell
    compile(cell, "<cell>", "exec")
