# Builds every Switchyard binary once; docker-compose.yml runs them as separate services.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p switchyard-sandbox -p web-bff -p mobile-bff -p iot-bff -p partner-bff

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/switchyard-sandbox /src/target/release/web-bff \
    /src/target/release/mobile-bff /src/target/release/iot-bff \
    /src/target/release/partner-bff /usr/local/bin/
USER nobody
