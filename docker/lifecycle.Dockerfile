# Lifecycle: REST API :7102, internal gRPC :7112, and the admin CLI (migrate, generate-auth, ...).
# The binary is built on the host and copied in (docker/README.md); the database migrations are
# embedded in it. Build context: the staging folder `make docker-build` fills.
ARG BASE_IMAGE=racetrack/debian-base:bookworm
FROM ${BASE_IMAGE}
# Linked dynamically: libpq (Postgres) and SQLite (the embedded default).
RUN apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends libpq5 libsqlite3-0 >/dev/null \
 && rm -rf /var/lib/apt/lists/* /var/log/apt/* /var/log/dpkg.log \
 && mkdir -p /var/lib/racetrack /run/racetrack/secrets \
 && chown 10001:10001 /var/lib/racetrack /run/racetrack/secrets
COPY entrypoint.sh /usr/local/bin/racetrack-entrypoint
COPY lifecycle-init.sh /usr/local/bin/lifecycle-init
COPY secrets.sh /usr/local/bin/racetrack-secrets
COPY bin/lifecycle /usr/local/bin/lifecycle
# In a container, loopback-only defaults would be unreachable; SQLite only if nothing else is set.
ENV HTTP_ADDR=0.0.0.0:7102 GRPC_ADDR=0.0.0.0:7112 DATABASE_URL=sqlite:///var/lib/racetrack/racetrack.db
WORKDIR /var/lib/racetrack
USER 10001:10001
EXPOSE 7102 7112
ENTRYPOINT ["/usr/local/bin/racetrack-entrypoint"]
CMD ["lifecycle", "serve"]
