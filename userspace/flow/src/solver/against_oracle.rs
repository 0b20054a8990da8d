//! `solve` against the slow oracles on many random problems: the answer must be a valid
//! assignment (candidates only, capacities respected, every block's load accounted for, the
//! cost adding up) that carries the most load there is, at the least cost there is. Problems
//! too big for the oracles are checked by the optimality conditions (`certify`).

use rand::rngs::StdRng;
use rand::SeedableRng;

use crate::oracle::{bellman_ford, brute_force, certify, random_map, random_problem, Optimum, Shape};
use crate::problem::Problem;
use crate::solution::Solution;
use crate::solver::solve;

/// Panics unless `s` is a valid assignment of `p` with the load and cost of `best`.
fn check(p: &Problem, s: &Solution, best: Optimum, what: &str) {
    check_valid(p, s, what);
    assert_eq!(
        s.total_assigned(),
        best.carried,
        "{what}: carried load is not the most"
    );
    assert_eq!(s.total_cost, best.cost, "{what}: cost is not the least");
}

/// Panics unless `s` is a valid assignment of `p`: candidates only, capacities respected, every
/// block's load accounted for, the cost adding up.
fn check_valid(p: &Problem, s: &Solution, what: &str) {
    assert_eq!(s.flows.len(), p.blocks.len(), "{what}");
    assert_eq!(s.unassigned.len(), p.blocks.len(), "{what}");
    let mut used = vec![0u128; p.regions.len()];
    let mut cost = 0u128;
    for (b, block) in p.blocks.iter().enumerate() {
        let mut placed = 0u128;
        for (i, &(region, amount)) in s.flows[b].iter().enumerate() {
            assert!(amount > 0, "{what}: block {b} has an empty flow");
            assert!(
                i == 0 || s.flows[b][i - 1].0 < region,
                "{what}: block {b}'s flows are not in increasing region order"
            );
            let unit = block
                .candidates
                .iter()
                .filter(|c| c.region == region)
                .map(|c| c.cost)
                .min()
                .unwrap_or_else(|| panic!("{what}: block {b} sent to region {region}, not a candidate"));
            used[region] += u128::from(amount);
            placed += u128::from(amount);
            cost += u128::from(amount) * u128::from(unit);
        }
        assert_eq!(
            placed + u128::from(s.unassigned[b]),
            u128::from(block.load),
            "{what}: block {b}'s load is not accounted for"
        );
    }
    for (r, region) in p.regions.iter().enumerate() {
        assert!(
            used[r] <= u128::from(region.capacity),
            "{what}: region {r} over capacity"
        );
    }
    assert_eq!(cost, s.total_cost, "{what}: total cost does not add up");
}

/// Solves `count` random problems of `shape` and checks each against `oracle`.
fn run(seed: u64, count: usize, shape: Shape, oracle: fn(&Problem) -> Optimum) {
    let mut rng = StdRng::seed_from_u64(seed);
    for i in 0..count {
        let p = random_problem(&mut rng, shape);
        let s = solve(&p).unwrap_or_else(|e| panic!("problem {i}: {e}"));
        check(&p, &s, oracle(&p), &format!("seed {seed} problem {i}: {p:?}"));
    }
}

#[test]
fn small_random_problems_match_the_bellman_ford_oracle() {
    let shape = Shape {
        blocks: 6,
        regions: 4,
        candidates: 4,
        load: 9,
        capacity: 12,
        cost: 20,
    };
    run(1, 2000, shape, bellman_ford);
}

#[test]
fn tiny_random_problems_match_brute_force() {
    let shape = Shape {
        blocks: 3,
        regions: 3,
        candidates: 3,
        load: 4,
        capacity: 5,
        cost: 6,
    };
    run(2, 300, shape, brute_force);
}

#[test]
fn random_problems_full_of_equal_costs_match_the_oracle() {
    let shape = Shape {
        blocks: 6,
        regions: 4,
        candidates: 4,
        load: 6,
        capacity: 8,
        cost: 2,
    };
    run(3, 300, shape, bellman_ford);
}

#[test]
fn random_problems_with_huge_loads_and_costs_match_the_oracle() {
    let shape = Shape {
        blocks: 6,
        regions: 4,
        candidates: 4,
        load: 1 << 40,
        capacity: 1 << 41,
        cost: u64::MAX,
    };
    run(4, 200, shape, bellman_ford);
}

#[test]
fn medium_random_problems_with_long_reroutes_match_the_oracle() {
    // Tight capacity and many regions: paths shift load through several regions.
    let shape = Shape {
        blocks: 40,
        regions: 8,
        candidates: 4,
        load: 20,
        capacity: 60,
        cost: 50,
    };
    run(5, 40, shape, bellman_ford);
}

#[test]
fn large_random_maps_get_solutions_that_meet_the_optimality_conditions() {
    let mut rng = StdRng::seed_from_u64(6);
    let mut split = 0;
    for max_cost in [3, 1000, u64::MAX] {
        for capacity_percent in [50, 90, 100, 110, 150] {
            let p = random_map(&mut rng, (2000, 40, 5), max_cost, capacity_percent);
            let s = solve(&p).unwrap_or_else(|e| panic!("{e}"));
            let what = format!("costs up to {max_cost}, capacity {capacity_percent} % of load");
            check_valid(&p, &s, &what);
            if let Err(why) = certify(&p, &s) {
                panic!("{what}: {why}");
            }
            split += s.flows.iter().filter(|f| f.len() > 1).count();
        }
    }
    // The maps are tight enough that some blocks must be split over regions.
    assert!(split > 0);
}
