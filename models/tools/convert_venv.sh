# Sourced by the model scripts: `convert_venv PACKAGE...` makes (or reuses) the conversion venv
# .local/venv-convert, kept apart from the project venv (TensorFlow and NNCF are large and only
# needed to make models), installs the packages into it and sets VENV and ROOT.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="$ROOT/.local/venv-convert"

convert_venv() {
    if [[ ! -x "$VENV/bin/python" ]]; then
        python3 -m venv "$VENV"
    fi
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check "$@"
}
