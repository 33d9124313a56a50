"""A network in the style of many online courses: per-sample backprop, lists of weight
matrices and (n, 1) bias columns, sigmoid units, quadratic cost averaged over a mini-batch.

    bpcheck verify examples/online_network.py:backprop_rule     # agrees: exit 0
"""

import numpy as np

from bpcheck import Conventions, UserRule


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def sigmoid_prime(z):
    s = sigmoid(z)
    return s * (1 - s)


class Network:
    def __init__(self, sizes, seed=0):
        rng = np.random.default_rng(seed)
        self.sizes = sizes
        self.biases = [rng.standard_normal((n, 1)) for n in sizes[1:]]
        self.weights = [rng.standard_normal((n, m)) for m, n in zip(sizes[:-1], sizes[1:])]

    def feedforward(self, a):
        for b, w in zip(self.biases, self.weights):
            a = sigmoid(w @ a + b)
        return a

    def backprop(self, x, y):
        """Gradient of C_x = ½‖a − y‖² for one sample x (a column), as (nabla_b, nabla_w)."""
        activation, activations, zs = x, [x], []
        for b, w in zip(self.biases, self.weights):
            z = w @ activation + b
            zs.append(z)
            activation = sigmoid(z)
            activations.append(activation)
        nabla_b = [None] * len(self.biases)
        nabla_w = [None] * len(self.weights)
        delta = (activations[-1] - y) * sigmoid_prime(zs[-1])
        nabla_b[-1], nabla_w[-1] = delta, delta @ activations[-2].T
        for l in range(2, len(self.sizes)):
            delta = (self.weights[-l + 1].T @ delta) * sigmoid_prime(zs[-l])
            nabla_b[-l], nabla_w[-l] = delta, delta @ activations[-l - 1].T
        return nabla_b, nabla_w

    def update_mini_batch(self, xs, ys, eta):
        sums_b = [np.zeros(b.shape) for b in self.biases]
        sums_w = [np.zeros(w.shape) for w in self.weights]
        for x, y in zip(xs, ys):
            nabla_b, nabla_w = self.backprop(x, y)
            sums_b = [s + n for s, n in zip(sums_b, nabla_b)]
            sums_w = [s + n for s, n in zip(sums_w, nabla_w)]
        self.biases = [b - eta / len(xs) * s for b, s in zip(self.biases, sums_b)]
        self.weights = [w - eta / len(xs) * s for w, s in zip(self.weights, sums_w)]


def backprop(params, x, y):
    """bpcheck's view of Network.backprop: params are (biases, weights), x and y one sample."""
    net = Network([1, 1])
    net.biases, net.weights = params
    net.sizes = [None] * (len(net.weights) + 1)
    return net.backprop(x, y)


# The mini-batch averages the per-sample gradients: the cost is ½‖a − y‖² over the batch, mean.
backprop_rule = UserRule(
    "online_network", backprop, per_sample=True,
    activations=("sigmoid", "sigmoid"), hidden_layers=(1, 3), loss="half-sse", reduction="mean",
    conventions=Conventions(params="biases,weights", bias="column", data="samples_as_columns"),
)
