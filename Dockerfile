# One image for the demo app, the agent and the balancer; docker-compose.yml
# picks the command. Node 24 runs the TypeScript sources directly.
# NODE_IMAGE is the official Node 24 image; the test suite, which cannot reach
# Docker Hub, passes a local stand-in (README, "Docker").
ARG NODE_IMAGE=node:24-bookworm-slim
FROM ${NODE_IMAGE}
ENV SEMPRE_LOG_FORMAT=json
WORKDIR /opt/sempre
COPY package.json package-lock.json ./
# The image already has Node 24: skip the npm "node" package's download.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
# The sources, in one layer: .dockerignore lets in only what runs.
COPY . .
# Node's compile cache, filled here with the TypeScript already stripped, so no
# process loads Node's type stripper (about 27 MB of RSS each; BENCHMARKS.md).
ENV NODE_COMPILE_CACHE=/opt/sempre/node_modules/.cache/sempre
RUN scripts/warm-compile-cache.sh
USER node
