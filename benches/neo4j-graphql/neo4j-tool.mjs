// Small Neo4j chores for scripts/bench-compare, over the official driver:
//   node neo4j-tool.mjs count         prints how many (:Node) nodes there are
//   node neo4j-tool.mjs clean DATE    deletes the INFLUENCED relationships dated DATE
//                                     (the benchmark's own), so that a run can be repeated
// Connection from NEO4J_URI, NEO4J_USER (neo4j) and NEO4J_PASSWORD.
import neo4j from "neo4j-driver";

const driver = neo4j.driver(
  process.env.NEO4J_URI ?? "bolt://127.0.0.1:7687",
  neo4j.auth.basic(process.env.NEO4J_USER ?? "neo4j", process.env.NEO4J_PASSWORD ?? ""),
);
const [command, argument] = process.argv.slice(2);
try {
  if (command === "count") {
    const { records } = await driver.executeQuery("MATCH (n:Node) RETURN count(n) AS count");
    console.log(records[0].get("count").toNumber());
  } else if (command === "clean") {
    const { summary } = await driver.executeQuery(
      "MATCH (:Node)-[r:INFLUENCED]->(:Node) WHERE r.on = $date DELETE r",
      { date: argument },
    );
    console.log(summary.counters.updates().relationshipsDeleted);
  } else {
    throw new Error(`unknown command ${command}`);
  }
} finally {
  await driver.close();
}
