import six


class SixFatman:
    """Uses a package installed from requirements.txt (six), to check that pip works in a build."""

    def perform(self, text: str = "hello") -> dict:
        return {"text": six.ensure_text(text).upper(), "six_version": six.__version__}

    def docs_input_example(self) -> dict:
        return {"text": "hello"}
