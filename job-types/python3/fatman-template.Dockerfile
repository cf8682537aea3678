# Fatman image of the python3 job type, rendered by the image-builder for each deployment.
# Its placeholders and conditional sections are described in job-types/README.md.
# Build context: the fatman's workspace (git.directory). WORKDIR /src/fatman, EXPOSE 7000 and the
# label racetrack-component=fatman come from the base image. Every instruction is a build step
# (seconds each with the legacy builder), so there are as few as possible.
FROM {{ base_image }} AS racetrack-fatman

# Build environment (build_env of the manifest): one ENV instruction, or nothing. Secret build env
# values are not in it: they reach only the requirements stage below (secret_args).
{{ env_lines }}

# Extra CA certificates (corporate proxies): trusted before anything is downloaded. PIP_CERT,
# REQUESTS_CA_BUNDLE and SSL_CERT_FILE (set in the base image) name the updated system bundle.
{% if extra_ca_certs %}
COPY ["{{ extra_ca_certs }}", "/usr/local/share/ca-certificates/racetrack-extra-ca.crt"]
RUN update-ca-certificates >/dev/null
{% endif %}

{% if system_dependencies %}
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends {{ system_dependencies }} \
 && rm -rf /var/lib/apt/lists/*
{% endif %}

# Only the requirements file first: changing the code keeps the installed packages cached.
# pip runs in a stage of its own, the only one that sees the secret build env (as build args,
# which Docker records in the history of the stage's steps); the fatman image copies the installed
# packages (/opt/venv) from it and descends from racetrack-fatman, so no secret value ends up in
# its layers, config or history.
{% if requirements_path %}
FROM racetrack-fatman AS racetrack-requirements
{{ secret_args }}
COPY ["{{ requirements_path }}", "/src/requirements/requirements.txt"]
RUN python -m pip install -r /src/requirements/requirements.txt

FROM racetrack-fatman
COPY --from=racetrack-requirements /opt/venv /opt/venv
{% endif %}

COPY --chown=100000:100000 . /src/fatman/

ENV FATMAN_NAME="{{ fatman_name }}" \
    GIT_VERSION="{{ git_version }}" \
    DEPLOYED_BY_RACETRACK_VERSION="{{ deployed_by_racetrack_version }}" \
    JOB_TYPE_VERSION="{{ job_type_version }}"

USER 100000:100000
CMD ["python", "-u", "-m", "racetrack_fatman_wrapper", "run", "{{ entrypoint_path }}", "{{ entrypoint_class }}"]
