"""A PEP 517 build backend using only the standard library, so that `pip install ./python` works on
machines without network access and without the `wheel` package (which setuptools needs to build
wheels). It packs the pure-Python package lmstream_client/ into a wheel (or an sdist), and supports
PEP 660 editable installs through a .pth file. It reads name and version from pyproject.toml."""
import base64
import hashlib
import io
import os
import re
import tarfile
import zipfile

try:
    import tomllib  # Python >= 3.11
except ImportError:  # older Pythons: read the few flat keys this backend needs
    tomllib = None

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = "lmstream_client"


def _project():
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        raw = f.read()
    if tomllib is not None:
        return tomllib.loads(raw.decode("utf-8"))["project"]
    table = raw.decode("utf-8").split("[project]", 1)[1].split("\n[", 1)[0]
    return {k: v for k, v in re.findall(r'^([a-z-]+)\s*=\s*"([^"]*)"', table, re.M)}


def _dist_name(project):
    return project["name"].replace("-", "_")


def _metadata(project):
    lines = ["Metadata-Version: 2.1", f"Name: {project['name']}", f"Version: {project['version']}",
             f"Summary: {project.get('description', '')}"]
    if "requires-python" in project:
        lines.append(f"Requires-Python: {project['requires-python']}")
    for extra, reqs in project.get("optional-dependencies", {}).items():
        lines.append(f"Provides-Extra: {extra}")
        lines += [f'Requires-Dist: {r}; extra == "{extra}"' for r in reqs]
    text = "\n".join(lines) + "\n"
    readme = os.path.join(ROOT, project.get("readme", "README.md"))
    if os.path.exists(readme):
        with open(readme, encoding="utf-8") as f:
            text += "Description-Content-Type: text/markdown\n\n" + f.read()
    return text


def _dist_info_files(project, tag="py3-none-any"):
    return {
        "METADATA": _metadata(project),
        "WHEEL": f"Wheel-Version: 1.0\nGenerator: lmstream_build\nRoot-Is-Purelib: true\nTag: {tag}\n",
        "top_level.txt": PACKAGE + "\n",
    }


def _package_files():
    base = os.path.join(ROOT, PACKAGE)
    for name in sorted(os.listdir(base)):
        if name.endswith(".py") or name == "py.typed":
            yield f"{PACKAGE}/{name}", os.path.join(base, name)


def _write_wheel(directory, entries, project):
    """entries: list of (archive name, bytes). Adds .dist-info and RECORD."""
    dist = _dist_name(project)
    info = f"{dist}-{project['version']}.dist-info"
    entries = list(entries) + [(f"{info}/{k}", v.encode()) for k, v in
                               _dist_info_files(project).items()]
    wheel_name = f"{dist}-{project['version']}-py3-none-any.whl"
    record = []
    with zipfile.ZipFile(os.path.join(directory, wheel_name), "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries:
            zf.writestr(name, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            record.append(f"{name},sha256={digest},{len(data)}")
        record.append(f"{info}/RECORD,,")
        zf.writestr(f"{info}/RECORD", "\n".join(record) + "\n")
    return wheel_name


def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []


def get_requires_for_build_editable(config_settings=None):
    return []


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    project = _project()
    info = f"{_dist_name(project)}-{project['version']}.dist-info"
    os.makedirs(os.path.join(metadata_directory, info), exist_ok=True)
    for name, text in _dist_info_files(project).items():
        with open(os.path.join(metadata_directory, info, name), "w", encoding="utf-8") as f:
            f.write(text)
    return info


prepare_metadata_for_build_editable = prepare_metadata_for_build_wheel


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    entries = []
    for arcname, path in _package_files():
        with open(path, "rb") as f:
            entries.append((arcname, f.read()))
    return _write_wheel(wheel_directory, entries, _project())


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    project = _project()
    pth = (ROOT + "\n").encode()
    return _write_wheel(wheel_directory, [(f"__editable__.{_dist_name(project)}.pth", pth)],
                        project)


def build_sdist(sdist_directory, config_settings=None):
    project = _project()
    base = f"{_dist_name(project)}-{project['version']}"
    name = f"{base}.tar.gz"
    with tarfile.open(os.path.join(sdist_directory, name), "w:gz") as tar:
        for rel in ["pyproject.toml", "README.md", "_build/lmstream_build.py"]:
            if os.path.exists(os.path.join(ROOT, rel)):
                tar.add(os.path.join(ROOT, rel), arcname=f"{base}/{rel}")
        for arcname, path in _package_files():
            tar.add(path, arcname=f"{base}/{arcname}")
        pkg_info = _metadata(project).encode()
        ti = tarfile.TarInfo(f"{base}/PKG-INFO")
        ti.size = len(pkg_info)
        tar.addfile(ti, io.BytesIO(pkg_info))
    return name
