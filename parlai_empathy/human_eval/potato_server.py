"""Start a Potato annotation server with one fix: item text cannot close a ``<script>``.

Potato 2.12.1 writes each item's data into the annotation page as
``<script type="application/json"> {json} </script>`` (``potato.flask_server``, where it
renders ``var_elems``) and its ``easy_json`` leaves ``<`` unescaped. A model response
containing ``</script><script>...`` therefore ends that element early and the rest runs in
the annotator's browser. Escaping the text in the data file does not help: Potato decodes
the file and re-embeds the decoded text. So the page embedding is fixed where Potato writes
it: ``<``, ``>`` and ``&`` become ``\\u003c``, ``\\u003e``, ``\\u0026`` inside that JSON,
which ``JSON.parse`` reads back as the same characters. Nothing in Potato's files is edited:
this module replaces the function in Potato's module namespace, then runs Potato's own
``main``. Use it exactly like ``potato``::

    python -m parlai_empathy.human_eval.potato_server start config.yaml -p 8000 --host 127.0.0.1
"""
import sys

_JSON_HTML_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"}


def html_safe_json(text: str) -> str:
    """JSON text that cannot end an HTML element: the three markup characters escaped.

    Valid for any JSON document: outside strings JSON never uses these characters, and
    inside strings the ``\\uXXXX`` forms decode to the same characters.
    """
    for char, escape in _JSON_HTML_ESCAPES.items():
        text = text.replace(char, escape)
    return text


def patch_potato():
    """Make Potato's page embedding of item data safe; idempotent."""
    import potato.flask_server as flask_server

    original = flask_server.easy_json
    if getattr(original, "_parlai_empathy_safe", False):
        return

    def easy_json_html_safe(*args, **kwargs):
        return html_safe_json(original(*args, **kwargs))

    easy_json_html_safe._parlai_empathy_safe = True
    flask_server.easy_json = easy_json_html_safe


def main(argv=None) -> int:
    patch_potato()
    import potato.flask_server as flask_server

    sys.argv = ["potato"] + list(sys.argv[1:] if argv is None else argv)
    return flask_server.main()


if __name__ == "__main__":
    sys.exit(main())
