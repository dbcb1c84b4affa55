//! The closed vocabularies of the model, each one word per value in
//! SCREAMING_SNAKE_CASE, identical in GraphQL, JSON and the stores.

macro_rules! vocabulary {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord,
                 serde::Serialize, serde::Deserialize, async_graphql::Enum)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $text)] #[graphql(name = $text)] $variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            pub fn parse(text: &str) -> Option<Self> {
                match text { $($text => Some($name::$variant),)+ _ => None }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

vocabulary! {
    /// Who may see a node.
    Visibility {
        /// Anyone, including anonymous readers.
        Public = "PUBLIC",
        /// Any authenticated organisation.
        Partners = "PARTNERS",
        /// The owning organisation only.
        Private = "PRIVATE",
    }
}

vocabulary! {
    /// How a claim is known, so that sourced facts and inferences never look alike.
    Assertion {
        /// A public source states it.
        Sourced = "SOURCED",
        /// A reasonable reading of sources, not stated by them.
        Inferred = "INFERRED",
        /// Plausible, to be tested.
        Hypothetical = "HYPOTHETICAL",
    }
}

vocabulary! {
    /// Where a guiding principle stands.
    PrincipleStatus {
        Draft = "DRAFT",
        Adopted = "ADOPTED",
        Revised = "REVISED",
        Retired = "RETIRED",
    }
}

vocabulary! {
    /// The kind of a barrier to public value.
    BarrierKind {
        Institutional = "INSTITUTIONAL",
        Structural = "STRUCTURAL",
        Personal = "PERSONAL",
        Cultural = "CULTURAL",
    }
}

vocabulary! {
    /// Where an experiment stands.
    ExperimentStatus {
        Planned = "PLANNED",
        Running = "RUNNING",
        Completed = "COMPLETED",
        Stopped = "STOPPED",
    }
}

vocabulary! {
    /// What a learning is about.
    LearningKind {
        Mindset = "MINDSET",
        Behaviour = "BEHAVIOUR",
        Process = "PROCESS",
        Policy = "POLICY",
        Relationship = "RELATIONSHIP",
    }
}

vocabulary! {
    /// Confidence in a qualitative finding (GRADE-CERQual).
    Confidence {
        High = "HIGH",
        Moderate = "MODERATE",
        Low = "LOW",
        VeryLow = "VERY_LOW",
    }
}

vocabulary! {
    /// How far a learning has travelled into the system.
    Embedding {
        /// Written down.
        Captured = "CAPTURED",
        /// Passed on to others.
        Shared = "SHARED",
        /// Part of how the organisation works.
        Embedded = "EMBEDDED",
    }
}

vocabulary! {
    /// How a learning influenced its target.
    InfluenceHow {
        RevisedPrinciple = "REVISED_PRINCIPLE",
        ChangedPolicy = "CHANGED_POLICY",
        ChangedPractice = "CHANGED_PRACTICE",
        ReallocatedResources = "REALLOCATED_RESOURCES",
        ShiftedMindset = "SHIFTED_MINDSET",
        BuiltRelationship = "BUILT_RELATIONSHIP",
        InformedExperiment = "INFORMED_EXPERIMENT",
        ReducedBarrier = "REDUCED_BARRIER",
        ReplicatedElsewhere = "REPLICATED_ELSEWHERE",
    }
}

vocabulary! {
    /// The six conditions of systems change (Kania, Kramer and Senge, 2018).
    SystemCondition {
        Policies = "POLICIES",
        Practices = "PRACTICES",
        ResourceFlows = "RESOURCE_FLOWS",
        Relationships = "RELATIONSHIPS",
        PowerDynamics = "POWER_DYNAMICS",
        MentalModels = "MENTAL_MODELS",
    }
}

vocabulary! {
    /// How strong the evidence for an influence is, strongest first.
    Strength {
        Strong = "STRONG",
        Moderate = "MODERATE",
        Weak = "WEAK",
        Untested = "UNTESTED",
    }
}

macro_rules! default_to {
    ($($name:ident => $variant:ident),+ $(,)?) => {
        $(impl Default for $name {
            fn default() -> Self { $name::$variant }
        })+
    };
}

default_to! {
    Visibility => Public,
    Assertion => Inferred,
    PrincipleStatus => Draft,
    ExperimentStatus => Planned,
    Embedding => Captured,
    Strength => Untested,
}

vocabulary! {
    /// The kinds of node in the graph.
    NodeKind {
        Organisation = "ORGANISATION",
        Value = "VALUE",
        Principle = "PRINCIPLE",
        Barrier = "BARRIER",
        Experiment = "EXPERIMENT",
        Learning = "LEARNING",
        Source = "SOURCE",
    }
}

vocabulary! {
    /// The kinds of relationship; each points from cause to effect.
    RelationshipKind {
        /// A principle upholds a value.
        Upholds = "UPHOLDS",
        /// A barrier hinders a principle or a value.
        Hinders = "HINDERS",
        /// An experiment is guided by a principle.
        GuidedBy = "GUIDED_BY",
        /// An experiment addresses a barrier.
        Addresses = "ADDRESSES",
        /// An experiment produced a learning.
        Produced = "PRODUCED",
        /// A learning influenced a value, principle, barrier, experiment or learning.
        Influenced = "INFLUENCED",
        /// A node cites the source behind it.
        Cites = "CITES",
    }
}

impl NodeKind {
    /// The kind's segment in a node id, e.g. `principle` in `kc:principle:…`.
    pub fn segment(self) -> &'static str {
        match self {
            NodeKind::Organisation => "organisation",
            NodeKind::Value => "value",
            NodeKind::Principle => "principle",
            NodeKind::Barrier => "barrier",
            NodeKind::Experiment => "experiment",
            NodeKind::Learning => "learning",
            NodeKind::Source => "source",
        }
    }

    pub fn from_segment(segment: &str) -> Option<Self> {
        Some(match segment {
            "organisation" => NodeKind::Organisation,
            "value" => NodeKind::Value,
            "principle" => NodeKind::Principle,
            "barrier" => NodeKind::Barrier,
            "experiment" => NodeKind::Experiment,
            "learning" => NodeKind::Learning,
            "source" => NodeKind::Source,
            _ => return None,
        })
    }

    /// The kind's name as GraphQL spells its type, e.g. `Principle`.
    pub fn type_name(self) -> &'static str {
        match self {
            NodeKind::Organisation => "Organisation",
            NodeKind::Value => "Value",
            NodeKind::Principle => "Principle",
            NodeKind::Barrier => "Barrier",
            NodeKind::Experiment => "Experiment",
            NodeKind::Learning => "Learning",
            NodeKind::Source => "Source",
        }
    }
}

impl RelationshipKind {
    /// Whether the model allows this relationship from a node of kind `from` to one of kind `to`.
    pub fn allows(self, from: NodeKind, to: NodeKind) -> bool {
        use NodeKind as K;
        match self {
            RelationshipKind::Upholds => from == K::Principle && to == K::Value,
            RelationshipKind::Hinders => from == K::Barrier && matches!(to, K::Principle | K::Value),
            RelationshipKind::GuidedBy => from == K::Experiment && to == K::Principle,
            RelationshipKind::Addresses => from == K::Experiment && to == K::Barrier,
            RelationshipKind::Produced => from == K::Experiment && to == K::Learning,
            RelationshipKind::Influenced => {
                from == K::Learning && matches!(to, K::Value | K::Principle | K::Barrier | K::Experiment | K::Learning)
            }
            RelationshipKind::Cites => to == K::Source && from != K::Source,
        }
    }

    /// The allowed ends, in words, for error messages.
    pub fn rule(self) -> &'static str {
        match self {
            RelationshipKind::Upholds => "a principle to a value",
            RelationshipKind::Hinders => "a barrier to a principle or a value",
            RelationshipKind::GuidedBy => "an experiment to a principle",
            RelationshipKind::Addresses => "an experiment to a barrier",
            RelationshipKind::Produced => "an experiment to a learning",
            RelationshipKind::Influenced => "a learning to a value, principle, barrier, experiment or learning",
            RelationshipKind::Cites => "any node other than a source to a source",
        }
    }
}
