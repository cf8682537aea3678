// Behaviour of the fatmen page(s); see app.js for what every page shares.
