// The Neo4j GraphQL Library on Apollo Server over pvgraph's Neo4j graph, for
// scripts/bench-compare. Settings come from the environment:
//   LISTEN (127.0.0.1:18102), NEO4J_URI, NEO4J_USER (neo4j), NEO4J_PASSWORD.
import { readFileSync } from "node:fs";
import { ApolloServer } from "@apollo/server";
import { startStandaloneServer } from "@apollo/server/standalone";
import { Neo4jGraphQL } from "@neo4j/graphql";
import neo4j from "neo4j-driver";

const typeDefs = readFileSync(new URL("./typeDefs.graphql", import.meta.url), "utf8");
const [host, port] = (process.env.LISTEN ?? "127.0.0.1:18102").split(":");
const driver = neo4j.driver(
  process.env.NEO4J_URI ?? "bolt://127.0.0.1:7687",
  neo4j.auth.basic(process.env.NEO4J_USER ?? "neo4j", process.env.NEO4J_PASSWORD ?? ""),
);
const schema = await new Neo4jGraphQL({ typeDefs, driver }).getSchema();
const server = new ApolloServer({ schema });
const { url } = await startStandaloneServer(server, {
  listen: { host, port: Number(port) },
  context: async () => ({}),
});
console.log(`ready ${url}`);
