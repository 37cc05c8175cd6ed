"""What is kept and shipped: experiments on disk, sweeps, the Pareto front, reports and exports."""
