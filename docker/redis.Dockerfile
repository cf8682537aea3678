# Redis 7 for the compose setup (invalidation events only, nothing persisted), from Debian's
# packages on the debootstrapped base image.
ARG BASE_IMAGE=racetrack/debian-base:bookworm
FROM ${BASE_IMAGE}
RUN apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends redis-server >/dev/null \
 && rm -rf /var/lib/apt/lists/* /var/log/apt/* /var/log/dpkg.log
USER redis
EXPOSE 6379
ENTRYPOINT ["sh", "-c", "exec redis-server --bind \"${REDIS_BIND:-127.0.0.1}\" --port \"${REDIS_PORT:-6379}\" --save '' --appendonly no --protected-mode no"]
