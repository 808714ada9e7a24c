from bench.guardrails.evaluate import main

main()
