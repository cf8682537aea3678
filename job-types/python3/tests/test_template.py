"""Rendering of the job-type templates with the reference renderer (job-types/render_template.py)."""

import json
import re
import sys
import unittest
from pathlib import Path

JOB_TYPES = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(JOB_TYPES))

import render_template as rt  # noqa: E402

TEMPLATE = (JOB_TYPES / "python3" / "fatman-template.Dockerfile").read_text()
BASE = (JOB_TYPES / "python3" / "base.Dockerfile").read_text()

VARS = {
    "base_image": "127.0.0.1:5000/racetrack/fatman-base/python3:2.4.0",
    "env_lines": "",
    "secret_args": "",
    "extra_ca_certs": "",
    "system_dependencies": "",
    "requirements_path": "",
    "fatman_name": "adder",
    "fatman_version": "0.0.1",
    "git_version": "0.0.1-3-gabc1234",
    "deployed_by_racetrack_version": "0.1.0",
    "job_type_version": "2.4.0",
    "entrypoint_path": "adder.py",
    "entrypoint_class": "AdderModel",
}


def instructions(dockerfile: str):
    """Dockerfile instructions with continuation lines joined, comments and blanks dropped."""
    joined = re.sub(r"\s*\\\n\s*", " ", dockerfile)
    return [line.strip() for line in joined.splitlines() if line.strip() and not line.strip().startswith("#")]


class TemplateTest(unittest.TestCase):
    def test_minimal_rendering(self):
        out = rt.render(TEMPLATE, VARS)
        self.assertNotIn("{{", out)
        self.assertNotIn("{%", out)
        steps = instructions(out)
        self.assertEqual(steps[0], f"FROM {VARS['base_image']} AS racetrack-fatman")
        self.assertEqual(len([s for s in steps if s.startswith("FROM ")]), 1, steps)
        self.assertFalse(any("requirements" in s or "ca-certificates" in s or "apt-get" in s for s in steps))
        self.assertIn("COPY --chown=100000:100000 . /src/fatman/", steps)
        cmd = [s for s in steps if s.startswith("CMD ")]
        self.assertEqual(json.loads(cmd[0][4:]),
                         ["python", "-u", "-m", "racetrack_fatman_wrapper", "run", "adder.py", "AdderModel"])
        env = [s for s in steps if s.startswith("ENV FATMAN_NAME")][0]
        for key in ("FATMAN_NAME", "GIT_VERSION", "DEPLOYED_BY_RACETRACK_VERSION", "JOB_TYPE_VERSION"):
            self.assertIn(key + "=", env)
        self.assertLess(steps.index("COPY --chown=100000:100000 . /src/fatman/"), steps.index(env),
                        "identity ENV after the code COPY: a new version must not invalidate the package layers")

    def test_all_sections(self):
        variables = dict(VARS, env_lines=rt.env_lines({"DEBIAN_FRONTEND": "noninteractive", "Q": 'a"b$c\\d'}),
                         extra_ca_certs=".racetrack-extra-ca.crt", system_dependencies="libgomp1 curl=7.88.1-10",
                         requirements_path="deps/requirements.txt")
        steps = instructions(rt.render(TEMPLATE, variables))
        self.assertIn('ENV DEBIAN_FRONTEND="noninteractive" Q="a\\"b\\$c\\\\d"', steps)
        ca = steps.index('COPY [".racetrack-extra-ca.crt", "/usr/local/share/ca-certificates/racetrack-extra-ca.crt"]')
        update = next(i for i, s in enumerate(steps) if "update-ca-certificates" in s)
        apt = next(i for i, s in enumerate(steps) if "apt-get install" in s)
        req = steps.index('COPY ["deps/requirements.txt", "/src/requirements/requirements.txt"]')
        pip = next(i for i, s in enumerate(steps) if "pip install -r /src/requirements/requirements.txt" in s)
        code = steps.index("COPY --chown=100000:100000 . /src/fatman/")
        self.assertTrue(ca < update < apt < req < pip < code, steps)
        self.assertIn("libgomp1 curl=7.88.1-10", steps[apt])

    def test_secrets_reach_only_the_requirements_stage(self):
        variables = dict(VARS, env_lines=rt.env_lines({"A": "1"}), secret_args=rt.secret_args(["PIP_TOKEN"]),
                         requirements_path="requirements.txt")
        steps = instructions(rt.render(TEMPLATE, variables))
        froms = [i for i, s in enumerate(steps) if s.startswith("FROM ")]
        self.assertEqual([steps[i] for i in froms], [
            f"FROM {VARS['base_image']} AS racetrack-fatman",
            "FROM racetrack-fatman AS racetrack-requirements",
            "FROM racetrack-fatman",
        ])
        arg = steps.index("ARG PIP_TOKEN")
        pip = next(i for i, s in enumerate(steps) if "pip install" in s)
        self.assertTrue(froms[1] < arg < pip < froms[2], steps)
        final = steps[froms[2]:]
        self.assertEqual(final[1], "COPY --from=racetrack-requirements /opt/venv /opt/venv")
        self.assertFalse(any("PIP_TOKEN" in s for s in final + steps[:froms[1]]), steps)

    def test_renderer_rejects_unknown_and_unsafe(self):
        with self.assertRaises(rt.TemplateError):
            rt.render("FROM {{ nope }}\n", {})
        with self.assertRaises(rt.TemplateError):
            rt.render("{% if a %}\n{% if b %}\n{% endif %}\n", {"a": "x", "b": "y"})
        with self.assertRaises(rt.TemplateError):
            rt.render("{% if a %}\nX\n", {"a": "x"})
        with self.assertRaises(rt.TemplateError):
            rt.check_scalar("entrypoint_path", 'a"b')
        with self.assertRaises(rt.TemplateError):
            rt.check_scalar("system_dependencies", "curl; rm -rf /")
        with self.assertRaises(rt.TemplateError):
            rt.env_lines({"BAD-NAME": "x"})
        with self.assertRaises(rt.TemplateError):
            rt.env_lines({"A": "two\nlines"})
        self.assertEqual(rt.env_lines({}), "")

    def test_same_result_with_jinja2(self):
        try:
            import jinja2
        except ImportError:
            self.skipTest("jinja2 is not installed")
        variables = dict(VARS, env_lines=rt.env_lines({"A": "1"}), requirements_path="requirements.txt")
        for extra in ({}, {"extra_ca_certs": "ca.crt", "system_dependencies": "jq"}):
            ours = instructions(rt.render(TEMPLATE, dict(variables, **extra)))
            theirs = instructions(jinja2.Template(TEMPLATE, keep_trailing_newline=True).render(**dict(variables, **extra)))
            self.assertEqual(ours, theirs)

    def test_base_dockerfile(self):
        steps = instructions(BASE)
        self.assertEqual(steps[0], "ARG PYTHON_BASE_IMAGE=python:3.11-slim-bookworm")
        self.assertEqual(steps[1], "FROM $PYTHON_BASE_IMAGE")
        self.assertTrue(any(s.startswith("LABEL racetrack-component=fatman") for s in steps))
        self.assertIn("EXPOSE 7000", steps)
        self.assertIn("WORKDIR /src/fatman", steps)

    def test_job_type_files(self):
        for name in ("python3", "docker-http"):
            text = (JOB_TYPES / name / "job-type.yaml").read_text()
            self.assertRegex(text, rf"(?m)^name: {name}$")
            self.assertRegex(text, r"(?m)^version: \d+\.\d+\.\d+$")
        python3 = (JOB_TYPES / "python3" / "job-type.yaml").read_text()
        self.assertRegex(python3, r"(?m)^base_dockerfile: base\.Dockerfile$")
        self.assertRegex(python3, r"(?m)^template: fatman-template\.Dockerfile$")
        docker_http = (JOB_TYPES / "docker-http" / "job-type.yaml").read_text()
        self.assertRegex(docker_http, r"(?m)^template: null$")


if __name__ == "__main__":
    unittest.main()
