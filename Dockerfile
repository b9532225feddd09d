# One image for the demo app, the agent and the balancer; docker-compose.yml
# picks the command. Node 24 runs the TypeScript sources directly.
FROM node:24-bookworm-slim
WORKDIR /opt/sempre
COPY package.json package-lock.json ./
# The image already has Node 24: skip the npm "node" package's download.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY agent ./agent
COPY balancer ./balancer
COPY shared ./shared
COPY demo-app ./demo-app
COPY bin ./bin
USER node
ENV SEMPRE_LOG_FORMAT=json
