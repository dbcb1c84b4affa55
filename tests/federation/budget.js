// A reference subgraph, as another team would write it: a budget service that
// adds `budget` and `costPerLearning` to pvgraph's `Experiment` (by its key)
// and lists budget lines that point at pvgraph's experiments and learnings.
//
// The figures are illustrative, made up for this test; they are not King
// County's budget. The ids are real ids of pvgraph's King County seed.

import { parse } from 'graphql';
import { buildSubgraphSchema } from '@apollo/subgraph';

export const typeDefs = parse(`
  extend schema @link(url: "https://specs.apollo.dev/federation/v2.5", import: ["@key", "@external", "@requires"])

  "An experiment, owned by pvgraph; this service adds what it cost."
  type Experiment @key(fields: "id") {
    id: ID!
    "The money set aside for the experiment."
    budget: Budget
    "The budget divided by the number of learnings the experiment produced (from pvgraph)."
    costPerLearning: Float @requires(fields: "produced { id }")
    produced: [Learning!]! @external
  }

  "A learning, owned by pvgraph; this service only refers to it."
  type Learning @key(fields: "id", resolvable: false) {
    id: ID!
  }

  type Budget {
    amountUsd: Int!
    fiscalYear: Int!
    fundedBy: String!
  }

  "A line of the budget: money for an experiment, justified by learnings."
  type BudgetLine {
    id: ID!
    experiment: Experiment!
    amountUsd: Int!
    "The learnings the request for money cited."
    justifiedBy: [Learning!]!
  }

  type Query {
    budgetLines: [BudgetLine!]!
  }
`);

/** Illustrative budget lines, keyed by real King County seed ids. */
export const budgetLines = [
  {
    id: 'line-1',
    experiment: 'kc:experiment:protected-reflection-time',
    amountUsd: 42000,
    fiscalYear: 2022,
    fundedBy: 'Illustrative innovation fund',
    justifiedBy: ['kc:learning:time-and-space-for-reflection'],
  },
  {
    id: 'line-2',
    experiment: 'kc:experiment:fail-forward-retrospectives',
    amountUsd: 18500,
    fiscalYear: 2022,
    fundedBy: 'Illustrative department budget',
    justifiedBy: ['kc:learning:embrace-uncertainty-and-failure', 'kc:learning:small-safe-failures-build-tolerance'],
  },
  {
    id: 'line-3',
    experiment: 'kc:experiment:metro-reflection-practice-scale-up',
    amountUsd: 96000,
    fiscalYear: 2023,
    fundedBy: 'Illustrative innovation fund',
    justifiedBy: ['kc:learning:reflection-surfaces-inequitable-outcomes', 'kc:learning:reflection-needs-leader-sponsorship'],
  },
];

const budgetOf = (experimentId) => {
  const line = budgetLines.find((l) => l.experiment === experimentId);
  return line && { amountUsd: line.amountUsd, fiscalYear: line.fiscalYear, fundedBy: line.fundedBy };
};

export const resolvers = {
  Query: {
    budgetLines: () => budgetLines,
  },
  BudgetLine: {
    experiment: (line) => ({ id: line.experiment }),
    justifiedBy: (line) => line.justifiedBy.map((id) => ({ id })),
  },
  Experiment: {
    // The gateway sends the key and, for costPerLearning, the required `produced`.
    __resolveReference: (reference) => reference,
    budget: (experiment) => budgetOf(experiment.id) ?? null,
    costPerLearning: (experiment) => {
      const budget = budgetOf(experiment.id);
      if (!budget || !experiment.produced?.length) return null;
      return budget.amountUsd / experiment.produced.length;
    },
  },
};

export const schema = () => buildSubgraphSchema({ typeDefs, resolvers });
