# syntax=docker/dockerfile:1
#
# auuction production image: one static-ish binary plus the files it reads at run time.
#
#   docker build -t auuction .
#   docker run --env-file .env -p 8000:8000 auuction
#
# Build stage ---------------------------------------------------------------------------
FROM rust:1-bookworm AS builder
WORKDIR /src

# No compile-time checked `sqlx::query!` needs a live database in this build: if such macros
# are added, their metadata must be committed with `cargo sqlx prepare --workspace` (.sqlx/).
ENV SQLX_OFFLINE=true

# The whole workspace is copied at once (see .dockerignore for what is left out). Splitting
# out Cargo.toml/Cargo.lock for a dependency-only layer is awkward with a workspace; the
# BuildKit cache mounts below give the same benefit: the registry and target/ survive
# between builds, so a code change recompiles only our crate.
COPY . .

# static/ may not exist yet in a young checkout: the mkdir keeps the COPY lines below valid.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p auuction \
 && install -D -m 0755 target/release/auuction /out/auuction \
 && mkdir -p /src/static /src/templates /src/migrations

# Runtime stage -------------------------------------------------------------------------
FROM debian:bookworm-slim AS runtime

# ca-certificates: TLS to the SMTP relay (rustls uses webpki roots, but a system store costs
# little and helps any future native-tls path). Nothing else: bash, used by the health check,
# is part of the base image.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/*

# A fixed, unprivileged uid so volume ownership is stable across rebuilds.
RUN groupadd --system --gid 10001 auuction \
 && useradd --system --uid 10001 --gid auuction --home-dir /app --shell /usr/sbin/nologin auuction

WORKDIR /app
COPY --from=builder /out/auuction /usr/local/bin/auuction
COPY --from=builder /src/templates /app/templates
COPY --from=builder /src/static /app/static
# Migrations are embedded in the binary (sqlx::migrate!); the copy is for operators to read.
COPY --from=builder /src/migrations /app/migrations

# var/ holds uploaded media (a volume in docker-compose.yml) and outgoing mail files when no
# SMTP_URL is set. /srv/static is where docker-compose.yml mounts the `static_assets`
# volume that Caddy serves; creating it here gives a fresh volume the right owner.
RUN mkdir -p /app/var/media /app/var/mail /srv/static \
 && chown -R auuction:auuction /app/var /srv/static

ENV BIND=0.0.0.0:8000 \
    TEMPLATE_DIR=/app/templates \
    STATIC_DIR=/app/static \
    MEDIA_DIR=/app/var/media \
    MAIL_DIR=/app/var/mail \
    LOG_FORMAT=json \
    RUST_LOG=info

USER auuction
EXPOSE 8000

# The slim image has no curl: bash's /dev/tcp sends a plain HTTP/1.0 request to /healthz
# and the check passes only on a 200 status line.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8000 && printf 'GET /healthz HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&3 && head -n1 <&3 | grep -q ' 200 '"]

CMD ["auuction", "serve"]
