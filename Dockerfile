# syntax=docker/dockerfile:1
# One image target per BFF, each built and shipped alone:
#   docker build --target web-bff -t switchyard/web-bff .
# (likewise mobile-bff, iot-bff, partner-bff, and sandbox for the development upstreams).
# The images' entrypoint is the binary, so a deployment passes only its arguments
# (`--config …`), as deploy/kubernetes/ does.
FROM rust:1.95-bookworm AS source
WORKDIR /src
COPY . .

FROM source AS build-web-bff
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target,id=switchyard-target \
    cargo build --profile production --locked -p web-bff && cp target/production/web-bff /usr/local/bin/

FROM source AS build-mobile-bff
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target,id=switchyard-target \
    cargo build --profile production --locked -p mobile-bff && cp target/production/mobile-bff /usr/local/bin/

FROM source AS build-iot-bff
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target,id=switchyard-target \
    cargo build --profile production --locked -p iot-bff && cp target/production/iot-bff /usr/local/bin/

FROM source AS build-partner-bff
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target,id=switchyard-target \
    cargo build --profile production --locked -p partner-bff && cp target/production/partner-bff /usr/local/bin/

FROM source AS build-sandbox
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target,id=switchyard-target \
    cargo build --profile production --locked -p switchyard-sandbox \
    && cp target/production/switchyard-sandbox /usr/local/bin/

FROM debian:bookworm-slim AS runtime
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/*
USER 65534:65534

FROM runtime AS web-bff
COPY --from=build-web-bff /usr/local/bin/web-bff /usr/local/bin/
# The operations `graphql.persisted_queries = "trusted"` accepts ship with the binary.
COPY --from=source /src/schema/web.operations.json /etc/switchyard/web.operations.json
EXPOSE 8081
ENTRYPOINT ["web-bff"]

FROM runtime AS mobile-bff
COPY --from=build-mobile-bff /usr/local/bin/mobile-bff /usr/local/bin/
EXPOSE 8082
ENTRYPOINT ["mobile-bff"]

FROM runtime AS iot-bff
COPY --from=build-iot-bff /usr/local/bin/iot-bff /usr/local/bin/
EXPOSE 8083
ENTRYPOINT ["iot-bff"]

FROM runtime AS partner-bff
COPY --from=build-partner-bff /usr/local/bin/partner-bff /usr/local/bin/
EXPOSE 8084
ENTRYPOINT ["partner-bff"]

FROM runtime AS sandbox
COPY --from=build-sandbox /usr/local/bin/switchyard-sandbox /usr/local/bin/
ENTRYPOINT ["switchyard-sandbox"]
