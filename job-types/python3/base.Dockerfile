# Base image of the python3 job type: Python 3.11, the fatman wrapper, an empty venv for the
# fatman's own packages. Nothing fatman-specific; built once per job-type version.
# Build context: this directory (job-types/python3).
#   docker build -f base.Dockerfile --build-arg PYTHON_BASE_IMAGE=racetrack/python-base:bookworm .
# Any Debian-based image with python3 (>= 3.9) and its venv module will do as PYTHON_BASE_IMAGE.
ARG PYTHON_BASE_IMAGE=python:3.11-slim-bookworm
FROM $PYTHON_BASE_IMAGE

LABEL racetrack-component=fatman \
      racetrack.job-type=python3

# PIP_CERT / REQUESTS_CA_BUNDLE / SSL_CERT_FILE name the system bundle, so CA certificates added
# later with update-ca-certificates (the template's extra CA option) are trusted by pip too.
ENV LANG=C.UTF-8 \
    PYTHONUNBUFFERED=1 \
    PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
    REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    VIRTUAL_ENV=/opt/venv \
    PYTHONPATH=/opt/racetrack/wrapper \
    PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# The user's packages go to /opt/venv (first on PATH, so `python` is the venv's interpreter);
# the wrapper stays outside it (PYTHONPATH) and needs nothing but the standard library.
# Fatmen run as uid/gid 100000, as the Kubernetes target does.
RUN python3 -m venv /opt/venv \
 && groupadd --gid 100000 fatman \
 && useradd --uid 100000 --gid 100000 --create-home --home-dir /home/fatman --shell /bin/sh fatman \
 && mkdir -p /src/fatman /opt/racetrack/wrapper \
 && chown 100000:100000 /src/fatman

COPY racetrack_fatman_wrapper /opt/racetrack/wrapper/racetrack_fatman_wrapper
RUN python -m compileall -q /opt/racetrack/wrapper \
 && python -m racetrack_fatman_wrapper --version

# Inherited by every fatman image (each instruction of the per-deployment template costs a
# build step, so whatever is the same for all fatmen is set here).
WORKDIR /src/fatman
EXPOSE 7000
CMD ["python", "-m", "racetrack_fatman_wrapper", "--help"]
